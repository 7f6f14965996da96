using System.Net.Security;
using System.Text;
using EpollTransport.Connections;
using static EpollTransport.Connections.TlsClientHello;

namespace EpollTransport.Tests.Connections;

/// <summary>
/// The ClientHello reader behind <see cref="EpollSendMode.Auto"/>: real ClientHellos from .NET's TLS client, every
/// way a ClientHello can be split across receives, and malformed bytes, which must give a verdict and never throw.
/// </summary>
public sealed class TlsClientHelloTests
{
    /// <summary>ALPN lists the client offers (empty: no ALPN extension), and whether <c>h2</c> is among them.</summary>
    public static TheoryData<string[], bool> AlpnLists => new()
    {
        { ["h2", "http/1.1"], true },
        { ["http/1.1", "h2"], true },
        { ["h2"], true },
        { ["http/1.1"], false },
        { [], false },
        // Exact entries only: neither a longer ID that starts with h2 nor a shorter one.
        { ["h2c", "h", "http/1.1"], false },
    };

    [Theory]
    [MemberData(nameof(AlpnLists))]
    public async Task ARealClientHelloIsReadWholeAndInEverySplit(string[] alpn, bool offersH2)
    {
        var hello = await CaptureClientHelloAsync(alpn);
        var expected = offersH2 ? Verdict.Offers : Verdict.No;

        Assert.Equal(expected, Offers(hello, H2));
        // A receive can end anywhere: every prefix asks for more, and none is mistaken for a verdict.
        for (var length = 0; length < hello.Length; length++)
        {
            Assert.Equal(Verdict.NeedMore, Offers(hello.AsSpan(0, length), H2));
        }
        // Two receives, split at every byte, give the verdict of the whole.
        for (var split = 1; split < hello.Length; split++)
        {
            var sniffer = new Sniffer();
            Assert.Equal(Verdict.NeedMore, sniffer.Feed(hello.AsSpan(0, split), H2));
            Assert.Equal(expected, sniffer.Feed(hello.AsSpan(split), H2));
        }
        // One byte a receive.
        var trickle = new Sniffer();
        for (var i = 0; i < hello.Length - 1; i++)
        {
            Assert.Equal(Verdict.NeedMore, trickle.Feed(hello.AsSpan(i, 1), H2));
        }
        Assert.Equal(expected, trickle.Feed(hello.AsSpan(hello.Length - 1), H2));
        Assert.False(trickle.Started);
    }

    [Fact]
    public async Task BytesAfterTheClientHelloInTheSameReceiveDoNotChangeTheVerdict()
    {
        var hello = await CaptureClientHelloAsync(["h2"]);
        var withMore = hello.Concat(Encoding.ASCII.GetBytes("more records follow")).ToArray();

        Assert.Equal(Verdict.Offers, Offers(withMore, H2));
        var sniffer = new Sniffer();
        Assert.Equal(Verdict.NeedMore, sniffer.Feed(withMore.AsSpan(0, 3), H2));
        Assert.Equal(Verdict.Offers, sniffer.Feed(withMore.AsSpan(3), H2));
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]
    [InlineData("\u0015\u0003\u0003\u0000\u0002\u0002\u0028")] // a TLS alert record, not a handshake
    public void BytesThatAreNotAClientHelloAreToldAtOnce(string first)
    {
        var bytes = Encoding.Latin1.GetBytes(first);

        Assert.Equal(Verdict.No, Offers(bytes, H2));
        Assert.Equal(Verdict.No, new Sniffer().Feed(bytes, H2));
    }

    [Fact]
    public void ARecordLongerThanTlsAllowsIsNotBuffered()
    {
        // A handshake record header that announces 0xFFFF bytes: more than one TLS record may hold.
        byte[] header = [22, 3, 1, 0xFF, 0xFF];

        Assert.Equal(Verdict.No, Offers(header, H2));
        Assert.Equal(Verdict.No, new Sniffer().Feed(header, H2));
    }

    [Fact]
    public async Task MalformedClientHellosGiveAVerdictAndNeverThrow()
    {
        var hello = await CaptureClientHelloAsync(["h2", "http/1.1"]);
        var random = new Random(13);
        var mutated = new byte[hello.Length];
        for (var round = 0; round < 20_000; round++)
        {
            hello.CopyTo(mutated, 0);
            // A few bytes changed, the first record byte kept so that the parser goes past the first check.
            for (var changes = random.Next(1, 4); changes > 0; changes--)
            {
                mutated[random.Next(1, mutated.Length)] = (byte)random.Next(256);
            }
            var length = random.Next(mutated.Length + 1);
            var verdict = Offers(mutated.AsSpan(0, length), H2);
            Assert.True(Enum.IsDefined(verdict));

            // In two receives the verdict is the same, told with the second or already with the first (a changed
            // record length can end the record early).
            var sniffer = new Sniffer();
            var split = random.Next(length + 1);
            var first = sniffer.Feed(mutated.AsSpan(0, split), H2);
            Assert.Equal(verdict, first == Verdict.NeedMore ? sniffer.Feed(mutated.AsSpan(split, length - split), H2) : first);
        }
    }

    /// <summary>The bytes .NET's TLS client sends first when it offers <paramref name="alpn"/>.</summary>
    private static async Task<byte[]> CaptureClientHelloAsync(string[] alpn)
    {
        var capture = new CaptureStream();
        await using var tls = new SslStream(capture);
        var options = new SslClientAuthenticationOptions { TargetHost = "localhost" };
        if (alpn.Length > 0)
        {
            options.ApplicationProtocols = [.. alpn.Select(p => new SslApplicationProtocol(p))];
        }
        // The stream answers with end of stream, so the handshake fails once the ClientHello is written.
        await Assert.ThrowsAnyAsync<Exception>(() => tls.AuthenticateAsClientAsync(options));
        var bytes = capture.Written.ToArray();
        Assert.True(bytes.Length > 5, "the client wrote no ClientHello");
        var recordLength = (bytes[3] << 8) | bytes[4];
        Assert.Equal(5 + recordLength, bytes.Length);
        return bytes;
    }

    /// <summary>Keeps what is written; every read is end of stream.</summary>
    private sealed class CaptureStream : Stream
    {
        public MemoryStream Written { get; } = new();

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => 0;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(0);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Written.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Written.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }
    }
}
