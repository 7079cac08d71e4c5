using System.Threading.Channels;
using Npgsql;

namespace Inbox.Reliability.PostgreSql;

/// <summary>
/// Group commit: concurrent requests wait in a queue; one flusher takes everything waiting and writes it in one round trip
/// and one transaction, so eight callers pay for one commit (one fsync) instead of eight. Each caller's task completes only
/// after that commit. When the combined write fails with a server error (the transaction rolled back for sure), each request
/// is retried on its own so one bad request fails alone. A lost connection fails the whole group: the outcome is unknown,
/// and writing again could add jobs twice. The same batching serves reads that many callers make at once (chats' pending
/// events): one statement for all that waited.
/// </summary>
internal sealed class GroupCommit<TRequest, TResult> : IAsyncDisposable
{
    private readonly Channel<Pending> _channel;
    private readonly Func<IReadOnlyList<TRequest>, CancellationToken, Task<TResult[]>> _write;
    private readonly Func<TRequest, int> _size;
    private readonly int _maxSize;
    private readonly int _flushers;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _startLock = new();
    private Task? _loops;
    private long _groups;
    private int _waiting;

    /// <param name="write">Writes the requests in one transaction and returns one result per request, in order.</param>
    /// <param name="size">How many rows a request adds to a group.</param>
    /// <param name="maxSize">The most rows in one group (a soft cap: one large request still goes whole).</param>
    /// <param name="flushers">
    /// How many groups are written at once, each by its own flusher from the one queue: a request waits only until any
    /// flusher is free, and while one group commits the next one's statements already run.
    /// </param>
    public GroupCommit(Func<IReadOnlyList<TRequest>, CancellationToken, Task<TResult[]>> write, Func<TRequest, int> size, int maxSize, int flushers = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(flushers, 1);
        _write = write;
        _size = size;
        _maxSize = maxSize;
        _flushers = flushers;
        _channel = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = flushers == 1 });
    }

    /// <summary>How many requests wait for a group (not counting the group being written).</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>How many groups were written so far (for tests: fewer groups than requests means requests were combined).</summary>
    public long Groups => Interlocked.Read(ref _groups);

    public Task<TResult> SubmitAsync(TRequest request, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<TResult>(cancellationToken);
        var pending = new Pending(request, cancellationToken);
        Interlocked.Increment(ref _waiting);
        if (!_channel.Writer.TryWrite(pending))
        {
            Interlocked.Decrement(ref _waiting);
            throw new ObjectDisposedException(nameof(PostgreSqlJobStore), "The PostgreSQL storage was disposed (the host is stopping).");
        }

        EnsureStarted();
        return pending.Task;
    }

    private void EnsureStarted()
    {
        if (Volatile.Read(ref _loops) is not null) return;
        lock (_startLock)
        {
            _loops ??= Task.WhenAll(Enumerable.Range(0, _flushers).Select(_ => Task.Run(RunAsync)));
        }
    }

    private async Task RunAsync()
    {
        var reader = _channel.Reader;
        var group = new List<Pending>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            group.Clear();
            var size = 0;
            while (size < _maxSize && reader.TryRead(out var pending))
            {
                Interlocked.Decrement(ref _waiting);
                if (pending.TryCancel()) continue;
                group.Add(pending);
                size += _size(pending.Request);
            }

            if (group.Count > 0) await FlushAsync(group).ConfigureAwait(false);
        }
    }

    private async Task FlushAsync(List<Pending> group)
    {
        Interlocked.Increment(ref _groups);
        TResult[] results;
        try
        {
            results = await _write(group.Select(p => p.Request).ToList(), _stop.Token).ConfigureAwait(false);
        }
        catch (PostgresException) when (group.Count > 1)
        {
            // Rolled back for sure: retry each request alone, so only the request at fault fails.
            foreach (var pending in group)
            {
                try
                {
                    var single = await _write([pending.Request], _stop.Token).ConfigureAwait(false);
                    pending.Complete(single[0]);
                }
                catch (Exception ex)
                {
                    pending.Fail(ex);
                }
            }

            return;
        }
        catch (Exception ex)
        {
            foreach (var pending in group) pending.Fail(ex);
            return;
        }

        for (var i = 0; i < group.Count; i++) group[i].Complete(results[i]);
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        Task? loop;
        lock (_startLock) loop = _loops;
        if (loop is not null)
        {
            // Let what is queued be written; give up (and cancel the write) if the database does not answer.
            if (await Task.WhenAny(loop, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false) != loop)
            {
                await _stop.CancelAsync().ConfigureAwait(false);
            }
        }

        while (_channel.Reader.TryRead(out var left)) left.Fail(new ObjectDisposedException(nameof(PostgreSqlJobStore), "The PostgreSQL storage was disposed (the host is stopping)."));
        _stop.Dispose();
    }

    private sealed class Pending(TRequest request, CancellationToken cancellationToken)
    {
        private readonly TaskCompletionSource<TResult> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TRequest Request { get; } = request;

        public Task<TResult> Task => _tcs.Task;

        /// <summary>True when the caller gave up before the write started: the request is dropped.</summary>
        public bool TryCancel()
        {
            if (!cancellationToken.IsCancellationRequested) return false;
            _tcs.TrySetCanceled(cancellationToken);
            return true;
        }

        public void Complete(TResult result) => _tcs.TrySetResult(result);

        public void Fail(Exception ex) => _tcs.TrySetException(ex);
    }
}
