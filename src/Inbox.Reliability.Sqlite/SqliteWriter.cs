using Microsoft.Data.Sqlite;

namespace Inbox.Reliability.Sqlite;

/// <summary>
/// The single writer of a SQLite database: every write runs on one connection and one thread, and the writes
/// waiting at any moment share one transaction (group commit), so many callers pay for one fsync.
/// Callers get their result only after the COMMIT is durable. When a write throws, the shared transaction is
/// rolled back and every write of the batch runs again in a transaction of its own, so one bad write fails alone.
/// </summary>
internal sealed class SqliteWriter : IDisposable
{
    private const int MaxBatch = 1024;
    private readonly object _lock = new();
    private readonly Func<SqliteConnection> _open;
    private readonly Thread _thread;
    private List<WriteOp> _incoming = new();
    private bool _writerWaiting;
    private bool _disposed;
    private SqliteConnection? _connection;
    private SqliteWriteContext? _context;

    public SqliteWriter(Func<SqliteConnection> open)
    {
        _open = open;
        _thread = new Thread(Run) { IsBackground = true, Name = "inbox-sqlite-wr" };
        _thread.Start();
    }

    public Task<T> WriteAsync<T>(Func<SqliteWriteContext, T> write, CancellationToken cancellationToken = default)
    {
        var op = new WriteOp<T>(write, cancellationToken);
        lock (_lock)
        {
            if (_disposed) throw new ObjectDisposedException(nameof(SqliteWriter), "The SQLite storage was disposed (the host is stopping).");
            _incoming.Add(op);
            if (_writerWaiting) Monitor.Pulse(_lock);
        }

        return op.Task;
    }

    private void Run()
    {
        var batch = new List<WriteOp>();
        while (true)
        {
            lock (_lock)
            {
                while (_incoming.Count == 0)
                {
                    if (_disposed)
                    {
                        _context?.Dispose();
                        _connection?.Dispose();
                        return;
                    }

                    _writerWaiting = true;
                    Monitor.Wait(_lock);
                    _writerWaiting = false;
                }

                (batch, _incoming) = (_incoming, batch);
            }

            for (var start = 0; start < batch.Count; start += MaxBatch)
            {
                Execute(batch.GetRange(start, Math.Min(MaxBatch, batch.Count - start)));
            }

            batch.Clear();
        }
    }

    private void Execute(List<WriteOp> batch)
    {
        batch.RemoveAll(op => op.IsCanceled);
        if (batch.Count == 0) return;
        SqliteWriteContext context;
        try
        {
            context = Context();
            if (RunInOneTransaction(context, batch))
            {
                foreach (var op in batch) op.Complete();
                return;
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

        // A write threw and the shared transaction was rolled back: run each on its own.
        foreach (var op in batch)
        {
            try
            {
                RunInOneTransaction(context, [op]); // committed, or rolled back keeping the write's own error
                op.Complete();
            }
            catch (Exception ex)
            {
                op.Fail(ex);
                ResetConnectionAfter(ex);
                if (_context is null) context = Context();
            }
        }
    }

    /// <summary>Runs the writes in one transaction; true when committed, false when one threw (all rolled back).</summary>
    private static bool RunInOneTransaction(SqliteWriteContext context, List<WriteOp> ops)
    {
        context.Execute("BEGIN IMMEDIATE");
        try
        {
            foreach (var op in ops)
            {
                if (op.Run(context)) continue;
                context.Execute("ROLLBACK");
                return false;
            }

            context.Execute("COMMIT");
            return true;
        }
        catch
        {
            TryRollback(context);
            throw;
        }
    }

    private static void TryRollback(SqliteWriteContext context)
    {
        try
        {
            if (!context.Connection.AutoCommit()) context.Execute("ROLLBACK");
        }
        catch (SqliteException)
        {
            // The transaction is already gone.
        }
    }

    private SqliteWriteContext Context()
    {
        if (_context is null)
        {
            _connection = _open();
            _context = new SqliteWriteContext(_connection);
        }

        return _context;
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
        lock (_lock)
        {
            _disposed = true;
            Monitor.Pulse(_lock);
        }

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
                _result = default;
                _error = ex;
                return false;
            }
        }

        public override void Complete()
        {
            if (_error is not null) _tcs.TrySetException(_error);
            else _tcs.TrySetResult(_result!);
        }

        public override void Fail(Exception ex) => _tcs.TrySetException(ex);
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

    /// <summary>True when no transaction is open on the connection.</summary>
    public static bool AutoCommit(this SqliteConnection connection) =>
        SQLitePCL.raw.sqlite3_get_autocommit(connection.Handle) != 0;
}
