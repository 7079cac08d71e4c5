using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace Inbox.Reliability.Sqlite;

/// <summary>
/// The single writer of a SQLite database: every write runs on one connection and one thread, and the writes
/// waiting at any moment share one transaction (group commit), so many callers pay for one fsync.
/// Each write runs in its own savepoint: one that throws is rolled back alone and reports its error.
/// Callers get their result only after the COMMIT is durable.
/// </summary>
internal sealed class SqliteWriter : IDisposable
{
    private const int MaxBatch = 512;
    private readonly Channel<WriteOp> _channel = Channel.CreateUnbounded<WriteOp>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Func<SqliteConnection> _open;
    private readonly Thread _thread;
    private SqliteConnection? _connection;
    private SqliteWriteContext? _context;

    public SqliteWriter(Func<SqliteConnection> open)
    {
        _open = open;
        _thread = new Thread(Run) { IsBackground = true, Name = "Inbox.Reliability SQLite writer" };
        _thread.Start();
    }

    public Task<T> WriteAsync<T>(Func<SqliteWriteContext, T> write, CancellationToken cancellationToken = default)
    {
        var op = new WriteOp<T>(write, cancellationToken);
        if (!_channel.Writer.TryWrite(op)) throw new ObjectDisposedException(nameof(SqliteWriter), "The SQLite storage was disposed (the host is stopping).");
        return op.Task;
    }

    private void Run()
    {
        var batch = new List<WriteOp>(MaxBatch);
        var reader = _channel.Reader;
        while (true)
        {
            if (!reader.TryPeek(out _))
            {
                var more = reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult();
                if (!more) break;
            }

            batch.Clear();
            while (batch.Count < MaxBatch && reader.TryRead(out var op))
            {
                if (!op.IsCanceled) batch.Add(op);
            }

            if (batch.Count > 0) Execute(batch);
        }

        _context?.Dispose();
        _connection?.Dispose();
    }

    private void Execute(List<WriteOp> batch)
    {
        try
        {
            if (_connection is null)
            {
                _connection = _open();
                _context = new SqliteWriteContext(_connection);
            }

            var context = _context!;
            context.Execute("BEGIN IMMEDIATE");
            try
            {
                if (batch.Count == 1)
                {
                    // One write: no savepoint needed, a failed write rolls back the whole transaction.
                    context.Execute(batch[0].Run(context) ? "COMMIT" : "ROLLBACK");
                }
                else
                {
                    foreach (var op in batch)
                    {
                        context.Execute("SAVEPOINT w");
                        context.Execute(op.Run(context) ? "RELEASE w" : "ROLLBACK TO w; RELEASE w");
                    }

                    context.Execute("COMMIT");
                }
            }
            catch
            {
                try
                {
                    context.Execute("ROLLBACK");
                }
                catch (SqliteException)
                {
                    // The transaction is already gone.
                }

                throw;
            }
        }
        catch (Exception ex)
        {
            // BEGIN or COMMIT failed (disk full, I/O error, locked by another process past the busy timeout):
            // nothing of this batch is durable.
            foreach (var op in batch) op.Fail(ex);
            ResetConnectionAfter(ex);
            return;
        }

        foreach (var op in batch) op.Complete();
    }

    private void ResetConnectionAfter(Exception ex)
    {
        if (ex is SqliteException { SqliteErrorCode: 5 or 6 }) return; // busy or locked: the connection is fine.
        _context?.Dispose();
        _connection?.Dispose();
        _context = null;
        _connection = null;
    }

    public void Dispose()
    {
        _channel.Writer.TryComplete();
        _thread.Join();
    }

    private abstract class WriteOp
    {
        public abstract bool IsCanceled { get; }

        /// <summary>Runs the write; false when it threw (its error is kept for the caller).</summary>
        public abstract bool Run(SqliteWriteContext context);

        public abstract void Complete();

        public abstract void Fail(Exception ex);
    }

    private sealed class WriteOp<T>(Func<SqliteWriteContext, T> write, CancellationToken cancellationToken) : WriteOp
    {
        private readonly TaskCompletionSource<T> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private Exception? _error;

        public Task<T> Task => _tcs.Task;

        public override bool IsCanceled
        {
            get
            {
                if (!cancellationToken.IsCancellationRequested) return false;
                _tcs.TrySetCanceled(cancellationToken);
                return true;
            }
        }

        public override bool Run(SqliteWriteContext context)
        {
            try
            {
                _result = write(context);
                _error = null;
                return true;
            }
            catch (Exception ex)
            {
                _error = ex;
                return false;
            }
        }

        public override void Complete()
        {
            if (_error is not null) _tcs.TrySetException(_error);
            else _tcs.TrySetResult(_result!);
        }

        public override void Fail(Exception ex) => _tcs.TrySetException(_error ?? ex);
    }
}

/// <summary>The writer's connection, with its prepared commands cached by SQL text.</summary>
internal sealed class SqliteWriteContext(SqliteConnection connection) : IDisposable
{
    private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);

    public SqliteConnection Connection => connection;

    /// <summary>A cached command for <paramref name="sql"/>; set its parameters with <see cref="SqliteCommandExtensions.Set"/>.</summary>
    public SqliteCommand Command(string sql)
    {
        if (!_commands.TryGetValue(sql, out var command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            _commands[sql] = command;
        }

        return command;
    }

    public void Execute(string sql) => Command(sql).ExecuteNonQuery();

    public void Dispose()
    {
        foreach (var command in _commands.Values) command.Dispose();
        _commands.Clear();
    }
}

internal static class SqliteCommandExtensions
{
    public static SqliteCommand Set(this SqliteCommand command, string name, object? value)
    {
        var parameters = command.Parameters;
        var index = parameters.IndexOf(name);
        if (index < 0) parameters.AddWithValue(name, value ?? DBNull.Value);
        else parameters[index].Value = value ?? DBNull.Value;
        return command;
    }
}
