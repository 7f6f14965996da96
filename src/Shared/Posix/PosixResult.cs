using System.Globalization;
using System.Runtime.InteropServices;

namespace EpollTransport.Posix;

/// <summary>
/// The outcome of a libc call: a non-negative return value (a byte count, an fd, 0), or the errno it failed with,
/// stored negated. Errno is read right after the call (<see cref="Marshal.GetLastPInvokeError"/>), before anything
/// else on the thread can overwrite it.
/// </summary>
internal readonly struct PosixResult
{
    private readonly long _value;

    private PosixResult(long value) => _value = value;

    /// <summary>From a libc return value: negative (-1) means failure, and errno says why.</summary>
    public static PosixResult FromReturn(long ret) => ret >= 0 ? new PosixResult(ret) : FromErrno(Marshal.GetLastPInvokeError());

    /// <summary>A failure decided without a call: an argument the kernel would misread, or an operation refused as the kernel would.</summary>
    public static PosixResult FromErrno(int errno) => new(-(long)errno);

    public bool IsSuccess => _value >= 0;

    public long Value => _value;

    public int IntValue => (int)_value;

    /// <summary>The errno (positive) when the call failed, else 0.</summary>
    public int Errno => _value < 0 ? (int)-_value : 0;

    public bool WouldBlock => _value == -Errnos.EAGAIN;

    /// <summary>
    /// A signal interrupted the call. The wrappers of calls that can be interrupted retry them themselves, so a
    /// caller of this layer sees EINTR only from <c>close</c>, which must not be retried.
    /// </summary>
    public bool Interrupted => _value == -Errnos.EINTR;

    /// <summary>The value, or the errno's name, message and number: <c>ENOENT: No such file or directory (errno 2)</c>.</summary>
    public override string ToString() => IsSuccess ? _value.ToString(CultureInfo.InvariantCulture) : Errnos.Describe(Errno);
}
