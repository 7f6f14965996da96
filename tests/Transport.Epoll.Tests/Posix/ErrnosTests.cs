using EpollTransport.Posix;

namespace EpollTransport.Tests.Posix;

/// <summary>The classes both packages decide on: each errno in the one class it belongs to, and none in two.</summary>
public class ErrnosTests
{
    public static TheoryData<int, string?> Classified => new()
    {
        { Errnos.ECONNRESET, "reset" },
        { Errnos.EPIPE, "reset" },
        { Errnos.ETIMEDOUT, "reset" },
        { Errnos.EHOSTUNREACH, "reset" },
        { Errnos.ENETUNREACH, "reset" },
        { Errnos.ENOENT, "names nothing" },
        { Errnos.ENOTDIR, "names nothing" },
        { Errnos.EXDEV, "names nothing" },
        { Errnos.ELOOP, "names nothing" },
        { Errnos.EACCES, "names nothing" },
        { Errnos.ENAMETOOLONG, "names nothing" },
        { Errnos.EMFILE, "exhausted" },
        { Errnos.ENFILE, "exhausted" },
        { Errnos.ENOBUFS, "exhausted" },
        { Errnos.ENOMEM, "exhausted" },
        { Errnos.EIO, null },
        { Errnos.EAGAIN, null },
        { Errnos.EINTR, null },
        { Errnos.EBADF, null },
        { Errnos.EINVAL, null },
    };

    [Theory]
    [MemberData(nameof(Classified))]
    public void EachErrnoIsInItsClass(int errno, string? expected)
    {
        var classes = new List<string>();
        if (Errnos.IsConnectionReset(errno))
        {
            classes.Add("reset");
        }
        if (Errnos.NamesNothing(errno))
        {
            classes.Add("names nothing");
        }
        if (Errnos.IsResourceExhausted(errno))
        {
            classes.Add("exhausted");
        }

        Assert.Equal(expected is null ? [] : [expected], classes);
    }

    [Theory]
    [InlineData(Errnos.ECONNABORTED, true)]
    [InlineData(Errnos.EPROTO, true)]
    [InlineData(Errnos.EPERM, true)]
    [InlineData(Errnos.ENETDOWN, true)]
    [InlineData(Errnos.ETIMEDOUT, true)]
    [InlineData(Errnos.EMFILE, false)]
    [InlineData(Errnos.ENOBUFS, false)]
    [InlineData(Errnos.EBADF, false)]
    [InlineData(Errnos.EINVAL, false)]
    public void AnAcceptErrorOfOneConnectionIsTransient(int errno, bool transient)
    {
        Assert.Equal(transient, Errnos.IsTransientAcceptError(errno));
        // A transient error is never also a shortage: the listener would both accept at once and back off.
        Assert.False(transient && Errnos.IsResourceExhausted(errno));
    }
}
