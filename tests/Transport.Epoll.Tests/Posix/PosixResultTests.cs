using EpollTransport.Posix;

namespace EpollTransport.Tests.Posix;

public class PosixResultTests
{
    [Fact]
    public void ErrnoIsReadRightAfterTheCall()
    {
        var result = PosixIO.Close(-1);

        Assert.False(result.IsSuccess);
        Assert.Equal(Errnos.EBADF, result.Errno);
    }

    [Theory]
    [InlineData(Errnos.ENOENT, "ENOENT: ", " (errno 2)")]
    [InlineData(Errnos.EAGAIN, "EAGAIN: ", " (errno 11)")]
    [InlineData(Errnos.ECONNRESET, "ECONNRESET: ", " (errno 104)")]
    [InlineData(Errnos.ENAMETOOLONG, "ENAMETOOLONG: ", " (errno 36)")]
    public void AFailureNamesItsErrno(int errno, string name, string number)
    {
        var text = PosixResult.FromErrno(errno).ToString();

        Assert.StartsWith(name, text, StringComparison.Ordinal);
        Assert.EndsWith(number, text, StringComparison.Ordinal);
        // The libc message sits between them.
        Assert.True(text.Length > name.Length + number.Length, text);
    }

    [Fact]
    public void AnErrnoWithoutANameStillGivesItsNumber()
    {
        const int ENOTEMPTY = 39;

        var text = PosixResult.FromErrno(ENOTEMPTY).ToString();

        Assert.Null(Errnos.Name(ENOTEMPTY));
        Assert.DoesNotContain(':', text);
        Assert.EndsWith(" (errno 39)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ASuccessIsItsValue()
    {
        var result = PosixResult.FromReturn(4096);

        Assert.True(result.IsSuccess);
        Assert.Equal(0, result.Errno);
        Assert.Equal("4096", result.ToString());
    }

    [Fact]
    public void WouldBlockAndInterruptedAreTheirErrnos()
    {
        Assert.True(PosixResult.FromErrno(Errnos.EAGAIN).WouldBlock);
        Assert.False(PosixResult.FromErrno(Errnos.EAGAIN).Interrupted);
        Assert.True(PosixResult.FromErrno(Errnos.EINTR).Interrupted);
        Assert.False(PosixResult.FromErrno(Errnos.EINTR).WouldBlock);
        Assert.False(PosixResult.FromReturn(0).WouldBlock);
    }
}
