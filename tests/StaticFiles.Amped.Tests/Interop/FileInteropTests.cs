using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using EpollTransport.Posix;
using StaticFiles.Amped.Interop;

namespace StaticFiles.Amped.Tests.Interop;

/// <summary>
/// The file calls against real files: each test gets a fresh temp directory holding <c>root/</c> (what
/// <see cref="FileInterop.OpenBeneath"/> is confined to) and, beside it, <c>outside.txt</c>, which must stay out of
/// reach from the root.
/// </summary>
public sealed class FileInteropTests : IDisposable
{
    private static readonly byte[] Contents = Encoding.UTF8.GetBytes("hello from inside the root\n");
    private static readonly byte[] Secret = Encoding.UTF8.GetBytes("outside the root\n");

    private readonly DirectoryInfo _temp;
    private readonly string _root;
    private readonly string _file;
    private readonly string _outside;
    private readonly List<int> _fds = [];

    public FileInteropTests()
    {
        _temp = Directory.CreateTempSubdirectory("amped-interop-");
        _root = Path.Combine(_temp.FullName, "root");
        Directory.CreateDirectory(Path.Combine(_root, "sub"));
        _file = Path.Combine(_root, "sub", "file.txt");
        File.WriteAllBytes(_file, Contents);
        _outside = Path.Combine(_temp.FullName, "outside.txt");
        File.WriteAllBytes(_outside, Secret);
    }

    public void Dispose()
    {
        foreach (var fd in _fds)
        {
            PosixIO.Close(fd);
        }
        _temp.Delete(recursive: true);
    }

    [Fact]
    public void TheStructsHaveTheKernelsLayout()
    {
        Assert.Equal(256, Unsafe.SizeOf<Statx>());
        Assert.Equal(16, Unsafe.SizeOf<Statx.Timestamp>());
        Assert.Equal(24, Unsafe.SizeOf<OpenHow>());
        Assert.Equal(0x14, (int)Marshal.OffsetOf<Statx>(nameof(Statx.stx_uid)));
        Assert.Equal(0x1c, (int)Marshal.OffsetOf<Statx>(nameof(Statx.stx_mode)));
        Assert.Equal(0x20, (int)Marshal.OffsetOf<Statx>(nameof(Statx.stx_ino)));
        Assert.Equal(40, (int)Marshal.OffsetOf<Statx>(nameof(Statx.stx_size)));
        Assert.Equal(0x40, (int)Marshal.OffsetOf<Statx>(nameof(Statx.stx_atime)));
        Assert.Equal(112, (int)Marshal.OffsetOf<Statx>(nameof(Statx.stx_mtime)));
        Assert.Equal(0x8c, (int)Marshal.OffsetOf<Statx>(nameof(Statx.stx_dev_minor)));
        Assert.Equal(8, (int)Marshal.OffsetOf<Statx.Timestamp>(nameof(Statx.Timestamp.tv_nsec)));
        Assert.Equal(16, (int)Marshal.OffsetOf<OpenHow>(nameof(OpenHow.resolve)));

        // Marshal.OffsetOf describes the marshalled layout; the kernel writes into the managed struct itself.
        var statx = default(Statx);
        Assert.Equal(40, (int)Unsafe.ByteOffset(ref Unsafe.As<Statx, byte>(ref statx), ref Unsafe.As<ulong, byte>(ref statx.stx_size)));
        Assert.Equal(112, (int)Unsafe.ByteOffset(ref Unsafe.As<Statx, byte>(ref statx), ref Unsafe.As<long, byte>(ref statx.stx_mtime.tv_sec)));
    }

    [Fact]
    public void StatFdGivesTheSizeModeInodeAndModificationTime()
    {
        var written = new DateTime(2021, 3, 4, 5, 6, 7, DateTimeKind.Utc).AddTicks(1_234_567);
        File.SetLastWriteTimeUtc(_file, written);

        var result = FileInterop.StatFd(OpenFile("sub/file.txt"), out var statx);

        Assert.True(result.IsSuccess, result.ToString());
        Assert.Equal(FileInterop.STATX_BASIC_STATS, statx.stx_mask & FileInterop.STATX_BASIC_STATS);
        Assert.Equal(new FileInfo(_file).Length, (long)statx.stx_size);
        Assert.Equal(FileInterop.S_IFREG, statx.stx_mode & FileInterop.S_IFMT);
        Assert.Equal(1u, statx.stx_nlink);
        Assert.NotEqual(0ul, statx.stx_ino);
        var mtime = DateTime.UnixEpoch.AddSeconds(statx.stx_mtime.tv_sec).AddTicks(statx.stx_mtime.tv_nsec / 100);
        Assert.Equal(written, mtime);
        Assert.Equal(TruncateToSecond(File.GetLastWriteTimeUtc(_file)), TruncateToSecond(mtime));

        Assert.True(FileInterop.StatFd(OpenFile("sub"), out var directory).IsSuccess);
        Assert.Equal(FileInterop.S_IFDIR, directory.stx_mode & FileInterop.S_IFMT);
        Assert.NotEqual(statx.stx_ino, directory.stx_ino);
    }

    [Fact]
    public void OpenBeneathOfAMissingFileIsENOENT()
    {
        var result = FileInterop.OpenBeneath(OpenRoot(), "sub/missing.txt");

        Assert.False(result.IsSuccess);
        Assert.Equal(Errnos.ENOENT, result.Errno);
        Assert.StartsWith("ENOENT: ", result.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void APathWithANulNamesNoFile()
    {
        Assert.Equal(Errnos.ENOENT, FileInterop.StatPath(_file + "\0.gz", out _).Errno);
        Assert.Equal(Errnos.ENOENT, FileInterop.OpenBeneath(OpenRoot(), "sub/file.txt\0.gz").Errno);
    }

    [Fact]
    public void OpenDirectoryRefusesAFile()
    {
        var result = FileInterop.OpenDirectory(_file);

        Assert.Equal(Errnos.ENOTDIR, result.Errno);
    }

    [Fact]
    public void OpenBeneathOpensAFileUnderTheRootAndReadReturnsItsBytes()
    {
        var fd = OpenFile("sub/file.txt");
        var buffer = new byte[Contents.Length + 16];

        var read = FileInterop.Read(fd, buffer, 0);

        Assert.True(read.IsSuccess, read.ToString());
        Assert.Equal(Contents, buffer.AsSpan(0, read.IntValue).ToArray());
    }

    [Theory]
    [InlineData("../outside.txt")]
    [InlineData("sub/../../outside.txt")]
    [InlineData("/etc/hostname")]
    public void OpenBeneathRefusesAPathThatLeavesTheRoot(string path)
    {
        var result = FileInterop.OpenBeneath(OpenRoot(), path);

        Assert.False(result.IsSuccess);
        Assert.Equal(Errnos.EXDEV, result.Errno);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void OpenBeneathRefusesASymlinkToAFileOutsideTheRoot(bool absoluteTarget)
    {
        File.CreateSymbolicLink(Path.Combine(_root, "escape.txt"), absoluteTarget ? _outside : "../outside.txt");
        Assert.Equal(Secret, File.ReadAllBytes(Path.Combine(_root, "escape.txt")));

        var result = FileInterop.OpenBeneath(OpenRoot(), "escape.txt");

        Assert.False(result.IsSuccess);
        Assert.Equal(Errnos.EXDEV, result.Errno);
    }

    [Fact]
    public void OpenBeneathRefusesASymlinkedDirectoryOutsideTheRoot()
    {
        Directory.CreateSymbolicLink(Path.Combine(_root, "up"), _temp.FullName);

        Assert.Equal(Errnos.EXDEV, FileInterop.OpenBeneath(OpenRoot(), "up/outside.txt").Errno);
    }

    [Fact]
    public void OpenBeneathFollowsASymlinkThatStaysInsideTheRoot()
    {
        // Relative: under RESOLVE_BENEATH an absolute symlink is refused even when it points inside.
        File.CreateSymbolicLink(Path.Combine(_root, "sub", "alias.txt"), "../sub/file.txt");
        File.CreateSymbolicLink(Path.Combine(_root, "alias.txt"), "sub/file.txt");

        foreach (var path in new[] { "sub/alias.txt", "alias.txt" })
        {
            var fd = OpenFile(path);
            var buffer = new byte[Contents.Length];
            Assert.Equal(Contents.Length, FileInterop.Read(fd, buffer, 0).IntValue);
            Assert.Equal(Contents, buffer);
        }
    }

    [Fact]
    public void ReadNoWaitReturnsTheBytesOfAFileInThePageCache()
    {
        // Just written, so its pages are in the page cache.
        var fd = OpenFile("sub/file.txt");
        var buffer = new byte[Contents.Length];

        var read = PosixIO.ReadNoWait(fd, buffer, 0);

        Assert.True(read.IsSuccess, read.ToString());
        Assert.Equal(Contents.Length, read.IntValue);
        Assert.Equal(Contents, buffer);
        Assert.Throws<ArgumentOutOfRangeException>(() => PosixIO.ReadNoWait(fd, buffer, -1));
    }

    [Fact]
    public void ReadAtAnOffsetAndPastTheEnd()
    {
        var fd = OpenFile("sub/file.txt");
        var buffer = new byte[5];

        var read = FileInterop.Read(fd, buffer, 6);
        Assert.Equal(5, read.IntValue);
        Assert.Equal(Contents.AsSpan(6, 5).ToArray(), buffer);

        var tail = new byte[64];
        var last = FileInterop.Read(fd, tail, Contents.Length - 3);
        Assert.Equal(3, last.IntValue);
        Assert.Equal(Contents.AsSpan(Contents.Length - 3).ToArray(), tail.AsSpan(0, 3).ToArray());

        Assert.Equal(0, FileInterop.Read(fd, buffer, Contents.Length).Value);
        Assert.Equal(0, FileInterop.Read(fd, buffer, Contents.Length + 100).Value);
        Assert.Equal(0, PosixIO.ReadNoWait(fd, buffer, Contents.Length + 100).Value);
    }

    [Fact]
    public void StatFdAgreesWithStatPath()
    {
        var fd = OpenFile("sub/file.txt");

        var byFd = FileInterop.StatFd(fd, out var fromFd);
        var byPath = FileInterop.StatPath(_file, out var fromPath);

        Assert.True(byFd.IsSuccess, byFd.ToString());
        Assert.True(byPath.IsSuccess, byPath.ToString());
        Assert.Equal(fromPath.stx_ino, fromFd.stx_ino);
        Assert.Equal(fromPath.stx_dev_major, fromFd.stx_dev_major);
        Assert.Equal(fromPath.stx_dev_minor, fromFd.stx_dev_minor);
        Assert.Equal(fromPath.stx_size, fromFd.stx_size);
        Assert.Equal(fromPath.stx_mode, fromFd.stx_mode);
        Assert.Equal(fromPath.stx_mtime.tv_sec, fromFd.stx_mtime.tv_sec);
        Assert.Equal(fromPath.stx_mtime.tv_nsec, fromFd.stx_mtime.tv_nsec);
    }

    [Fact]
    public void OpenBeneathCachedOpensAFileWhoseWalkTheKernelHasCached()
    {
        var root = OpenRoot();
        OpenFile("sub/file.txt");

        var result = FileInterop.OpenBeneathCached(root, "sub/file.txt");
        Assert.True(result.IsSuccess, result.ToString());
        _fds.Add(result.IntValue);
        var stat = FileInterop.StatFdCached(result.IntValue, out var statx);

        Assert.True(stat.IsSuccess, stat.ToString());
        Assert.Equal((ulong)Contents.Length, statx.stx_size);
    }

    [Fact]
    public void OpenBeneathCachedAnswersACachedMissAtOnce()
    {
        var root = OpenRoot();
        Assert.Equal(Errnos.ENOENT, FileInterop.OpenBeneath(root, "sub/missing.txt").Errno);

        Assert.Equal(Errnos.ENOENT, FileInterop.OpenBeneathCached(root, "sub/missing.txt").Errno);
    }

    [Theory]
    [InlineData("../outside.txt")]
    [InlineData("sub/../../outside.txt")]
    [InlineData("/etc/hostname")]
    public void OpenBeneathCachedNeverOpensAPathThatLeavesTheRoot(string path)
    {
        Assert.Equal(Secret, File.ReadAllBytes(_outside));

        var result = FileInterop.OpenBeneathCached(OpenRoot(), path);

        // EXDEV, or EAGAIN when the kernel will only decide a ".." step on the full walk; never the file.
        Assert.False(result.IsSuccess);
        Assert.Contains(result.Errno, new[] { Errnos.EXDEV, Errnos.EAGAIN });
    }

    [Fact]
    public void CloseReleasesAValidFd()
    {
        var fd = FileInterop.OpenBeneath(OpenRoot(), "sub/file.txt");
        Assert.True(fd.IsSuccess, fd.ToString());

        PosixIO.Close(fd.IntValue);

        Assert.Equal(Errnos.EBADF, FileInterop.StatFd(fd.IntValue, out _).Errno);
    }

    private int OpenRoot()
    {
        var result = FileInterop.OpenDirectory(_root);
        Assert.True(result.IsSuccess, result.ToString());
        _fds.Add(result.IntValue);
        return result.IntValue;
    }

    private int OpenFile(string relativePath)
    {
        var result = FileInterop.OpenBeneath(OpenRoot(), relativePath);
        Assert.True(result.IsSuccess, result.ToString());
        _fds.Add(result.IntValue);
        return result.IntValue;
    }

    private static DateTime TruncateToSecond(DateTime time) => new(time.Ticks - time.Ticks % TimeSpan.TicksPerSecond, time.Kind);
}
