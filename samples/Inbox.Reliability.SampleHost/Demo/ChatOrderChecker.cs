using System.Collections.Concurrent;
using Inbox.Reliability.SampleHost.Handlers;

namespace Inbox.Reliability.SampleHost.Demo;

/// <summary>
/// Demo only: checks the library's per-key FIFO promise. For each chat of this run it remembers the next message
/// expected; a message that starts before the one ahead of it completed, or while another message of its chat is
/// running, is a violation. A message that runs again after it completed is counted as a duplicate (delivery is
/// at-least-once; a crash between the handler and the record of its outcome can cause one).
/// </summary>
public sealed class ChatOrderChecker(string run)
{
    private readonly ConcurrentDictionary<string, int> _next = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _problems = new();
    private int _violations;
    private int _duplicates;

    /// <summary>The run whose messages are checked; messages left over from an earlier run are not.</summary>
    public string Run { get; } = run;

    /// <summary>Messages that ran out of order or alongside another message of their chat.</summary>
    public int Violations => Volatile.Read(ref _violations);

    /// <summary>Messages that ran again after they had completed.</summary>
    public int Duplicates => Volatile.Read(ref _duplicates);

    /// <summary>The first problems seen, described.</summary>
    public IReadOnlyList<string> Problems => _problems.Take(10).ToList();

    /// <summary>How many messages of each chat completed.</summary>
    public IReadOnlyDictionary<string, int> CompletedPerChat => new Dictionary<string, int>(_next, StringComparer.Ordinal);

    /// <summary>Called when a message starts; dispose the result when the attempt ends.</summary>
    public ChatOrderAttempt Begin(ChatMessagePayload message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (!string.Equals(message.Run, Run, StringComparison.Ordinal)) return new ChatOrderAttempt(this, null);

        var chat = message.ChatId;
        if (_running.AddOrUpdate(chat, 1, static (_, n) => n + 1) > 1)
        {
            Problem($"{chat}: message {message.Sequence} started while another message of the chat was running.");
        }

        var next = _next.GetOrAdd(chat, 0);
        if (message.Sequence > next) Problem($"{chat}: message {message.Sequence} started before message {next} had completed.");
        else if (message.Sequence < next) Interlocked.Increment(ref _duplicates);
        return new ChatOrderAttempt(this, message);
    }

    private void Problem(string description)
    {
        Interlocked.Increment(ref _violations);
        _problems.Enqueue(description);
    }

    internal void Complete(ChatMessagePayload message) =>
        _next.AddOrUpdate(message.ChatId, static (_, next) => next, static (_, current, next) => Math.Max(current, next), message.Sequence + 1);

    internal void End(ChatMessagePayload message) => _running.AddOrUpdate(message.ChatId, 0, static (_, n) => n - 1);
}

/// <summary>One attempt of a chat message, as seen by <see cref="ChatOrderChecker"/>.</summary>
public sealed class ChatOrderAttempt : IDisposable
{
    private readonly ChatOrderChecker _checker;
    private readonly ChatMessagePayload? _message;

    internal ChatOrderAttempt(ChatOrderChecker checker, ChatMessagePayload? message)
    {
        _checker = checker;
        _message = message;
    }

    /// <summary>The message completed: the next one of its chat may run.</summary>
    public void Completed()
    {
        if (_message is not null) _checker.Complete(_message);
    }

    /// <summary>The attempt ended, completed or not.</summary>
    public void Dispose()
    {
        if (_message is not null) _checker.End(_message);
    }
}
