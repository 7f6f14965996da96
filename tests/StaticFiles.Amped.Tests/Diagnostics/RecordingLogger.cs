using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace StaticFiles.Amped.Tests.Diagnostics;

/// <summary>A logger that keeps every entry (level, event id, message), from any thread, for a test to look at.</summary>
internal sealed class RecordingLogger : ILogger
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();

    public IReadOnlyCollection<LogEntry> Entries => _entries;

    /// <summary>How many entries carry the event named <paramref name="name"/>.</summary>
    public int Count(string name) => _entries.Count(e => e.EventId.Name == name);

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        => _entries.Enqueue(new LogEntry(logLevel, eventId, formatter(state, exception)));
}

internal sealed record LogEntry(LogLevel Level, EventId EventId, string Message);
