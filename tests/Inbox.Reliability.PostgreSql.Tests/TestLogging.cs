using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>Keeps every log entry of a host in memory, so tests can check what was logged (event ids, levels).</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<(string Category, LogLevel Level, EventId EventId, string Message, Exception? Exception)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    public IEnumerable<string> Describe(LogLevel atLeast = LogLevel.Warning) =>
        Entries.Where(e => e.Level >= atLeast).Select(e => $"{e.Level} {e.Category} [{e.EventId.Id}] {e.Message} {e.Exception?.GetType().Name}: {e.Exception?.Message}");

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) owner.Entries.Enqueue((category, logLevel, eventId, formatter(state, exception), exception));
        }
    }
}
