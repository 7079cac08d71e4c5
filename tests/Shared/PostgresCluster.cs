using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Npgsql;

namespace Inbox.Reliability.Testing;

/// <summary>
/// A throwaway PostgreSQL cluster: initdb + pg_ctl (as the <c>postgres</c> user when running as root, through runuser) in a
/// temporary folder, listening on a free loopback port with its socket in that folder, fsync on, max_connections=300, and one
/// database created for the caller. <see cref="StopAsync"/> stops it and deletes the folder; so does process exit, best effort.
/// Shared by the PostgreSQL tests (<c>PostgresServer</c>) and the benchmark (linked file, no test framework dependency).
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    private readonly string _missingServerHint;
    private readonly Lock _gate = new();
    private string? _root;
    private string? _bin;
    private bool _asPostgresUser;
    private bool _exitHookAdded;

    /// <param name="database">The database created for the caller; <see cref="ConnectionString"/> names it.</param>
    /// <param name="environmentVariable">The environment variable that names an existing server instead (only used in the message when PostgreSQL is not installed).</param>
    public PostgresCluster(string database, string environmentVariable)
    {
        Database = database;
        _missingServerHint = environmentVariable;
    }

    /// <summary>The database the connection string names.</summary>
    public string Database { get; }

    /// <summary>An Npgsql connection string (TCP on 127.0.0.1, user postgres, pooling on) to <see cref="Database"/>; empty until started.</summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>The same server and database as a URL (<c>postgres://user:pw@127.0.0.1:port/db</c>), for libpq and node clients.</summary>
    public string DatabaseUrl => ToDatabaseUrl(ConnectionString);

    /// <summary>The temporary folder (data directory, log, socket) while the cluster exists; null otherwise.</summary>
    public string? Folder => _root;

    /// <summary>The TCP port on 127.0.0.1.</summary>
    public int Port { get; private set; }

    /// <summary>True between a successful <see cref="StartAsync"/> and <see cref="StopAsync"/>.</summary>
    public bool IsRunning => _root is not null;

    private string DataDirectory => Path.Combine(_root ?? throw new InvalidOperationException("The cluster is not running."), "data");

    /// <summary>Creates the cluster, starts it and creates <see cref="Database"/>. On failure nothing is left behind.</summary>
    public async Task StartAsync()
    {
        if (_root is not null) throw new InvalidOperationException("The cluster is already running.");
        _bin = FindBinaries(_missingServerHint);
        _asPostgresUser = Environment.UserName == "root";
        var root = Path.Combine(Path.GetTempPath(), "inbox-pg-" + Guid.NewGuid().ToString("n")[..12]);
        Directory.CreateDirectory(root);
        _root = root;
        var started = false;
        try
        {
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
            var passwordFile = Path.Combine(root, "pwfile");
            await File.WriteAllTextAsync(passwordFile, password);
            if (_asPostgresUser) await RunAsync("chown", ["-R", "postgres:postgres", root]);

            Port = FreePort();
            await RunPostgresAsync("initdb", ["-D", DataDirectory, "-U", "postgres", "--pwfile=" + passwordFile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"]);
            File.Delete(passwordFile);
            await RunPostgresAsync("pg_ctl", ["-D", DataDirectory, "-l", Path.Combine(root, "server.log"), "-w", "-t", "60",
                "-o", $"-c listen_addresses=127.0.0.1 -p {Port} -k {root} -c fsync=on -c max_connections=300", "start"]);
            started = true;
            lock (_gate)
            {
                if (!_exitHookAdded)
                {
                    AppDomain.CurrentDomain.ProcessExit += (_, _) => StopImmediately();
                    _exitHookAdded = true;
                }
            }

            var admin = new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = Port, Username = "postgres", Password = password, Database = "postgres", Pooling = false };
            await using (var connection = new NpgsqlConnection(admin.ConnectionString))
            {
                await connection.OpenAsync();
                await using var create = new NpgsqlCommand($"CREATE DATABASE \"{Database}\"", connection);
                await create.ExecuteNonQueryAsync();
            }

            admin.Database = Database;
            admin.Pooling = true;
            ConnectionString = admin.ConnectionString;
        }
        catch
        {
            if (started) StopImmediately();
            else DeleteFolder();
            throw;
        }
    }

    /// <summary>Restarts the server (<c>pg_ctl restart -m fast</c>): every connection is dropped.</summary>
    public Task RestartAsync()
    {
        if (_root is null) throw new InvalidOperationException("Only a running cluster can be restarted.");
        return RunPostgresAsync("pg_ctl", ["-D", DataDirectory, "-w", "-t", "60", "-m", "fast", "restart"]);
    }

    /// <summary>Stops the server (<c>pg_ctl stop -m fast</c>) and deletes its folder. Does nothing when not running.</summary>
    public async Task StopAsync()
    {
        if (_root is null) return;
        NpgsqlConnection.ClearAllPools();
        await RunPostgresAsync("pg_ctl", ["-D", DataDirectory, "-m", "fast", "-w", "-t", "60", "stop"]);
        DeleteFolder();
    }

    /// <summary>
    /// Stops the server at once (<c>pg_ctl stop -m immediate</c>) and deletes its folder, synchronously and without throwing:
    /// for process exit and Ctrl+C handlers.
    /// </summary>
    public void StopImmediately()
    {
        if (_root is null || _bin is null) return;
        try
        {
            RunPostgresAsync("pg_ctl", ["-D", DataDirectory, "-m", "immediate", "-w", "stop"]).GetAwaiter().GetResult();
        }
        catch (Exception)
        {
            // Best effort: it may not be running any more.
        }

        DeleteFolder();
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    /// <summary>
    /// An Npgsql connection string as a libpq URL: <c>postgres://user:pw@host:port/db</c>, or with <c>?host=/socket/dir</c>
    /// when the host is a Unix socket folder.
    /// </summary>
    public static string ToDatabaseUrl(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        var user = Uri.EscapeDataString(b.Username ?? Environment.UserName);
        var credentials = string.IsNullOrEmpty(b.Password) ? user : user + ":" + Uri.EscapeDataString(b.Password);
        var database = Uri.EscapeDataString(b.Database ?? b.Username ?? "postgres");
        var host = string.IsNullOrEmpty(b.Host) ? "localhost" : b.Host.Split(',')[0];
        var port = b.Port.ToString(CultureInfo.InvariantCulture);
        if (host.StartsWith('/'))
        {
            return $"postgres://{credentials}@/{database}?host={Uri.EscapeDataString(host)}&port={port}";
        }

        if (host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[')) host = "[" + host + "]";
        return $"postgres://{credentials}@{host}:{port}/{database}";
    }

    private void DeleteFolder()
    {
        var root = _root;
        _root = null;
        if (root is null) return;
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A file may still be in use; the OS cleans temporary folders eventually.
        }
    }

    private static string FindBinaries(string environmentVariable)
    {
        const string root = "/usr/lib/postgresql";
        var bin = Directory.Exists(root)
            ? Directory.GetDirectories(root).Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "pg_ctl")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0).FirstOrDefault()
            : null;
        return bin ?? throw new InvalidOperationException(
            $"PostgreSQL was not found in {root}/*/bin. Install it (tests/Inbox.Reliability.PostgreSql.Tests/ensure-postgresql.sh) or set {environmentVariable} to a connection string.");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private Task RunPostgresAsync(string tool, string[] arguments)
    {
        var path = Path.Combine(_bin!, tool);
        return _asPostgresUser ? RunAsync("runuser", ["-u", "postgres", "--", path, .. arguments]) : RunAsync(path, arguments);
    }

    private static async Task RunAsync(string file, string[] arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = "/" };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} exited with {process.ExitCode}: {await stdout} {await stderr}");
        }
    }
}
