using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace StaticFiles.Amped.Tests.Caching;

/// <summary>An <see cref="ILogger"/> that keeps what it is given, so that a test can assert what was logged, and how often.</summary>
internal sealed class RecordingLogger : ILogger
{
    public ConcurrentQueue<(LogLevel Level, EventId Id, string Message)> Entries { get; } = new();

    /// <summary>How many entries carry the event id named <paramref name="name"/>.</summary>
    public int Count(string name) => Entries.Count(e => e.Id.Name == name);

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        => Entries.Enqueue((logLevel, eventId, formatter(state, exception)));
}
