using System.Runtime.InteropServices;
using EpollTransport.Posix;

namespace StaticFiles.Amped.Interop;

/// <summary>
/// The file system calls of the static-file path: statx(2), open(2), openat2(2), pread(2). Each may block on disk
/// and belongs on a helper, except the cached forms (<see cref="OpenBeneathCached"/>, <see cref="StatFdCached"/>),
/// meant for the event loop as <see cref="PosixIO.ReadNoWait"/> is; <see cref="PosixIO.Close"/> closes their fds.
/// </summary>
internal static unsafe partial class FileInterop
{
    // linux/fcntl.h
    public const int AT_FDCWD = -100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const int AT_STATX_SYNC_AS_STAT = 0x0000;
    public const int AT_STATX_DONT_SYNC = 0x4000;

    // linux/stat.h
    public const uint STATX_BASIC_STATS = 0x7ff;
    public const int S_IFMT = 0xf000;
    public const int S_IFDIR = 0x4000;
    public const int S_IFREG = 0x8000;

    // asm-generic/fcntl.h (octal there: O_NOCTTY 00000400, O_CLOEXEC 02000000), shared by x86-64 and arm64.
    public const int O_RDONLY = 0;
    public const int O_NOCTTY = 0x100;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;

    /// <summary>
    /// asm-generic/fcntl.h has 00200000, which x86-64 uses; arch/arm64/include/uapi/asm/fcntl.h overrides it with
    /// 040000 (on arm64, 00200000 is O_DIRECT).
    /// </summary>
    public static readonly int O_DIRECTORY = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 0x4000 : 0x10000;

    // linux/openat2.h
    public const ulong RESOLVE_NO_MAGICLINKS = 0x02;
    public const ulong RESOLVE_BENEATH = 0x08;
    public const ulong RESOLVE_CACHED = 0x20;

    /// <summary>
    /// __NR_openat2: 437 in asm-generic/unistd.h (arm64) and in arch/x86/entry/syscalls/syscall_64.tbl, since
    /// Linux 5.6 numbers new system calls the same on every architecture.
    /// </summary>
    public const long SYS_openat2 = 437;

    /// <summary>
    /// statx of what <paramref name="absolutePath"/> names now, following symlinks all the way as <c>open</c> does:
    /// the served root's path, compared with the directory open as the root to see whether a deploy replaced it.
    /// </summary>
    public static PosixResult StatPath(string absolutePath, out Statx statx)
    {
        statx = default;
        if (HasNul(absolutePath))
        {
            return PosixResult.FromErrno(Errnos.ENOENT);
        }
        fixed (Statx* buffer = &statx)
        {
            return PosixResult.FromReturn(statx_(AT_FDCWD, absolutePath, AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, buffer));
        }
    }

    /// <summary>statx of an open fd (AT_EMPTY_PATH: the empty path names <paramref name="fd"/> itself).</summary>
    public static PosixResult StatFd(int fd, out Statx statx) => StatFdHow(fd, AT_STATX_SYNC_AS_STAT, out statx);

    /// <summary>
    /// <see cref="StatFd"/> from what the kernel holds (AT_STATX_DONT_SYNC): a network file system
    /// does not ask its server. For an fd just opened by <see cref="OpenBeneathCached"/>.
    /// </summary>
    public static PosixResult StatFdCached(int fd, out Statx statx) => StatFdHow(fd, AT_STATX_DONT_SYNC, out statx);

    /// <summary>Opens the root directory, whose fd <see cref="OpenBeneath"/> resolves paths under.</summary>
    public static PosixResult OpenDirectory(string absolutePath)
        => HasNul(absolutePath)
            ? PosixResult.FromErrno(Errnos.ENOENT)
            : PosixResult.FromReturn(open(absolutePath, O_RDONLY | O_DIRECTORY | O_CLOEXEC));

    /// <summary>
    /// Opens <paramref name="relativePath"/> for reading, resolved by the kernel strictly under
    /// <paramref name="rootFd"/> (RESOLVE_BENEATH): a <c>..</c> that would climb above the root, an absolute path
    /// and a symlink that leaves the root (any absolute symlink included) fail with EXDEV; /proc magic links fail
    /// with ELOOP. ENOSYS means a kernel before 5.6 (or a seccomp filter that does not know openat2).
    /// </summary>
    public static PosixResult OpenBeneath(int rootFd, string relativePath) => OpenBeneathHow(rootFd, relativePath, cachedOnly: false);

    /// <summary>
    /// <see cref="OpenBeneath"/> from the dentry cache only (RESOLVE_CACHED, Linux 5.12): EAGAIN when a
    /// step of the walk is not cached and would have to read the disk, instead of waiting for it; EINVAL from a
    /// kernel that does not know the flag. A cached "no such file" (a negative dentry) answers ENOENT at once.
    /// </summary>
    public static PosixResult OpenBeneathCached(int rootFd, string relativePath) => OpenBeneathHow(rootFd, relativePath, cachedOnly: true);

    private static PosixResult OpenBeneathHow(int rootFd, string relativePath, bool cachedOnly)
    {
        if (HasNul(relativePath))
        {
            return PosixResult.FromErrno(Errnos.ENOENT);
        }
        var how = new OpenHow
        {
            // O_NONBLOCK: opening a FIFO (or a device) someone left under the root must not wait for a writer; it
            // is refused as not a regular file right after. Reads of regular files ignore the flag.
            flags = (ulong)(O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK),
            resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (cachedOnly ? RESOLVE_CACHED : 0),
        };
        if (cachedOnly)
        {
            // EAGAIN here means "not cached": the helper's full walk (below) retries the rename race itself.
            return PosixResult.FromReturn(syscall(SYS_openat2, rootFd, relativePath, &how, (nuint)sizeof(OpenHow)));
        }
        // openat2(2): with RESOLVE_BENEATH the kernel answers EAGAIN when a rename or mount raced with a ".."
        // step and it cannot prove the walk stayed under the root; the call is meant to be retried.
        const int Attempts = 3;
        PosixResult result = default;
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            result = PosixResult.FromReturn(syscall(SYS_openat2, rootFd, relativePath, &how, (nuint)sizeof(OpenHow)));
            if (!result.WouldBlock)
            {
                break;
            }
        }
        return result;
    }

    /// <summary>
    /// Reads from <paramref name="offset"/>, waiting for the disk if need be; 0 at or past the end. Retried when a
    /// signal interrupts it, as <see cref="PosixIO"/> retries its calls.
    /// </summary>
    public static PosixResult Read(int fd, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            PosixResult result;
            do
            {
                result = PosixResult.FromReturn(pread(fd, p, (nuint)buffer.Length, offset));
            }
            while (result.Interrupted);
            return result;
        }
    }

    /// <summary>
    /// A new fd for the same open file, close-on-exec (<c>fcntl(F_DUPFD_CLOEXEC)</c>): what a file region hands the
    /// transport, so that the bytes are sent even if the cache closes its own fd meanwhile. Never waits for the disk.
    /// </summary>
    public static PosixResult Duplicate(int fd) => PosixResult.FromReturn(fcntl(fd, F_DUPFD_CLOEXEC, 0));

    private static PosixResult StatFdHow(int fd, int sync, out Statx statx)
    {
        statx = default;
        fixed (Statx* buffer = &statx)
        {
            return PosixResult.FromReturn(statx_(fd, "", AT_EMPTY_PATH | sync, STATX_BASIC_STATS, buffer));
        }
    }

    // A NUL would end the C string early and name another file; no file can have such a name.
    private static bool HasNul(string path) => path.Contains('\0', StringComparison.Ordinal);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx_(int dirfd, string path, int flags, uint mask, Statx* buffer);

    // open(2) is variadic (a mode follows when O_CREAT or O_TMPFILE is set); without them it never reads a mode,
    // so the two fixed parameters are the whole call. See syscall below for why a fixed declaration is safe.
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    // long syscall(long number, ...) is variadic, declared here with the fixed parameters of openat2. On x86-64
    // SysV and on arm64 Linux (AAPCS64; Apple's arm64 ABI differs, Linux's does not) integer and pointer arguments
    // of a variadic call go in the same registers as for a non-variadic one (rdi, rsi, rdx, rcx, r8 / x0 to x4).
    // The only extra x86-64 rule is AL, an upper bound on the vector registers a variadic callee should spill; there
    // are none here, and glibc's syscall is assembly that moves the argument registers into the kernel's and never
    // reads AL.
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long syscall(long number, int dirfd, string path, OpenHow* how, nuint size);

    // fcntl(2) is variadic too; F_DUPFD_CLOEXEC takes one int, passed as a fixed parameter for the reason above.
    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);

    private const int F_DUPFD_CLOEXEC = 1030;

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pread(int fd, byte* buffer, nuint count, long offset);
}
