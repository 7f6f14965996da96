using System.Globalization;
using System.Runtime.InteropServices;

namespace StaticFiles.Amped.Interop;

/// <summary>
/// The outcome of a file call: a non-negative return value (a byte count, an fd, 0), or the errno it failed with,
/// stored negated. Errno is read right after the call (<see cref="Marshal.GetLastPInvokeError"/>), before anything
/// else on the thread can overwrite it.
/// </summary>
internal readonly struct FileResult
{
    // asm-generic/errno-base.h and asm-generic/errno.h: x86-64 and arm64 both use the generic numbers.
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int ENAMETOOLONG = 36;
    public const int ENOSYS = 38;
    public const int ELOOP = 40;
    public const int EOPNOTSUPP = 95;
    public const int ENOBUFS = 105;

    private readonly long _value;

    private FileResult(long value) => _value = value;

    /// <summary>From a libc return value: negative (-1) means failure, and errno says why.</summary>
    public static FileResult FromReturn(long ret) => ret >= 0 ? new FileResult(ret) : FromErrno(Marshal.GetLastPInvokeError());

    /// <summary>A failure decided before any call was made (an argument the kernel would misread).</summary>
    public static FileResult FromErrno(int errno) => new(-(long)errno);

    public bool IsSuccess => _value >= 0;

    public long Value => _value;

    public int IntValue => (int)_value;

    /// <summary>The errno (positive) when the call failed, else 0.</summary>
    public int Errno => _value < 0 ? (int)-_value : 0;

    public bool WouldBlock => _value == -EAGAIN;

    public bool Interrupted => _value == -EINTR;

    public override string ToString()
    {
        if (IsSuccess)
        {
            return _value.ToString(CultureInfo.InvariantCulture);
        }
        var description = $"{Marshal.GetPInvokeErrorMessage(Errno)} (errno {Errno.ToString(CultureInfo.InvariantCulture)})";
        return Name(Errno) is { } name ? $"{name}: {description}" : description;
    }

    private static string? Name(int errno) => errno switch
    {
        EPERM => nameof(EPERM),
        ENOENT => nameof(ENOENT),
        EINTR => nameof(EINTR),
        EIO => nameof(EIO),
        EBADF => nameof(EBADF),
        EAGAIN => nameof(EAGAIN),
        ENOMEM => nameof(ENOMEM),
        EACCES => nameof(EACCES),
        EXDEV => nameof(EXDEV),
        ENOTDIR => nameof(ENOTDIR),
        EISDIR => nameof(EISDIR),
        EINVAL => nameof(EINVAL),
        ENFILE => nameof(ENFILE),
        EMFILE => nameof(EMFILE),
        ENAMETOOLONG => nameof(ENAMETOOLONG),
        ENOSYS => nameof(ENOSYS),
        ELOOP => nameof(ELOOP),
        EOPNOTSUPP => nameof(EOPNOTSUPP),
        ENOBUFS => nameof(ENOBUFS),
        _ => null,
    };
}
