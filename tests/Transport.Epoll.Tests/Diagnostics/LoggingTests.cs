using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Diagnostics;

/// <summary>The transport's log events for a connection, as Kestrel's Sockets transport logs the same cases.</summary>
public class LoggingTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ASendThatFindsThePeerGoneIsLoggedAsAResetAtDebug(bool inline)
    {
        var log = new RecordingLoggerFactory();
        var options = new EpollTransportOptions { ReactorCount = 1, UnsafePreferInlineScheduling = inline };
        await using var factory = new EpollTransportFactory(Options.Create(options), log,
            HostServices.GetRequiredService<IMemoryPoolFactory<byte>>());
        var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        using var cts = new CancellationTokenSource(WaitLimit);
        using var client = await ConnectAsync(listener.EndPoint, cts.Token);
        var connection = await listener.AcceptAsync(cts.Token).AsTask().WaitAsync(WaitLimit);
        Assert.NotNull(connection);

        // The client's FIN ends the input first, so that the transport no longer receives: only a send can meet the
        // reset that follows.
        client.Shutdown(SocketShutdown.Send);
        var input = connection.Transport.Input;
        while (true)
        {
            var read = await input.ReadAsync(cts.Token);
            input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                break;
            }
        }
        client.LingerState = new LingerOption(true, 0);
        client.Close();

        // A send may still go out before the reset arrives; the one after it fails and ends the output.
        var output = connection.Transport.Output;
        var written = 0;
        for (; written < 10_000; written++)
        {
            var flush = await output.WriteAsync(new byte[1024], cts.Token);
            if (flush.IsCompleted)
            {
                break;
            }
        }
        Assert.True(written < 10_000, "The output never completed after the peer's reset.");
        await WhenCancelled(connection.ConnectionClosed).WaitAsync(WaitLimit);

        var entries = log.Entries.ToArray();
        var reset = Assert.Single(entries, e => e.EventId.Name == "ConnectionReset");
        Assert.Equal(LogLevel.Debug, reset.Level);
        Assert.Contains(connection.ConnectionId, reset.Message);
        Assert.DoesNotContain(entries, e => e.EventId.Name == "ConnectionError");

        await connection.DisposeAsync();
        await listener.DisposeAsync();
    }

    /// <summary>Keeps every entry of every category, at every level, from any thread.</summary>
    private sealed class RecordingLoggerFactory : ILoggerFactory, ILogger
    {
        public ConcurrentQueue<(LogLevel Level, EventId EventId, string Message)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => Entries.Enqueue((logLevel, eventId, formatter(state, exception)));

        public void Dispose()
        {
        }
    }
}
