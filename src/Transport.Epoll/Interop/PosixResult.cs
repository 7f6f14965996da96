namespace EpollTransport.Interop;

/// <summary>
/// The outcome of a libc call: a non-negative return value, or the errno it failed with.
/// Errno is read right after the call (<see cref="System.Runtime.InteropServices.Marshal.GetLastPInvokeError"/>),
/// before anything else can overwrite it.
/// </summary>
internal readonly struct PosixResult
{
    private readonly long _value;

    private PosixResult(long value) => _value = value;

    public static PosixResult FromReturn(long ret)
        => ret >= 0 ? new PosixResult(ret) : new PosixResult(-System.Runtime.InteropServices.Marshal.GetLastPInvokeError());

    /// <summary>A failure that did not come from a call: the transport refuses an operation as the kernel would.</summary>
    public static PosixResult FromErrno(int errno) => new(-errno);

    public bool IsSuccess => _value >= 0;

    public long Value => _value;

    public int IntValue => (int)_value;

    /// <summary>The errno (positive) when the call failed, else 0.</summary>
    public int Errno => _value < 0 ? (int)-_value : 0;

    public bool WouldBlock => _value == -Errnos.EAGAIN;

    public bool Interrupted => _value == -Errnos.EINTR;

    public override string ToString() => IsSuccess ? _value.ToString(System.Globalization.CultureInfo.InvariantCulture) : Errnos.Describe(Errno);
}
