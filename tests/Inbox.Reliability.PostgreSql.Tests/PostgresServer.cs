using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Npgsql;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>
/// The PostgreSQL server the tests use: the one named by the environment variable <c>INBOX_TEST_POSTGRES</c> (a connection
/// string), or else a throwaway cluster started here (initdb + pg_ctl as the <c>postgres</c> user, in a temporary folder,
/// on a free loopback port, socket in the folder), stopped and deleted at the end.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    public const string EnvironmentVariable = "INBOX_TEST_POSTGRES";
    private const string Database = "inbox_tests";

    private string? _root;
    private string? _bin;
    private bool _asPostgresUser;

    public string ConnectionString { get; private set; } = "";

    /// <summary>True when this fixture started the server (so tests may restart it).</summary>
    public bool OwnsServer => _root is not null;

    public string? Folder => _root;

    public async Task InitializeAsync()
    {
        var given = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(given))
        {
            ConnectionString = given;
            return;
        }

        _bin = FindBinaries();
        _asPostgresUser = Environment.UserName == "root";
        _root = Path.Combine(Path.GetTempPath(), "inbox-pg-" + Guid.NewGuid().ToString("n")[..12]);
        Directory.CreateDirectory(_root);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(_root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        var passwordFile = Path.Combine(_root, "pwfile");
        await File.WriteAllTextAsync(passwordFile, password);
        if (_asPostgresUser) await RunAsync("chown", ["-R", "postgres:postgres", _root]);

        var port = FreePort();
        var data = Path.Combine(_root, "data");
        await RunPostgresAsync("initdb", ["-D", data, "-U", "postgres", "--pwfile=" + passwordFile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"]);
        File.Delete(passwordFile);
        await RunPostgresAsync("pg_ctl", ["-D", data, "-l", Path.Combine(_root, "server.log"), "-w", "-t", "60",
            "-o", $"-c listen_addresses=127.0.0.1 -p {port} -k {_root} -c fsync=on -c max_connections=300", "start"]);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => StopQuietly();

        var admin = new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = port, Username = "postgres", Password = password, Database = "postgres", Pooling = false };
        await using (var connection = new NpgsqlConnection(admin.ConnectionString))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {Database}", connection);
            await create.ExecuteNonQueryAsync();
        }

        admin.Database = Database;
        admin.Pooling = true;
        ConnectionString = admin.ConnectionString;
    }

    /// <summary>A fresh schema name for one test.</summary>
    public static string NewSchema() => "t_" + Guid.NewGuid().ToString("n")[..16];

    public async Task DropSchemaAsync(string schema)
    {
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
        await drop.ExecuteNonQueryAsync();
    }

    /// <summary>A connection outside any storage, for assertions and for the host's own writes.</summary>
    public async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Restarts the server (<c>pg_ctl restart -m fast</c>): every connection is dropped.</summary>
    public Task RestartAsync()
    {
        if (_root is null) throw new InvalidOperationException("Only a server this fixture started can be restarted.");
        return RunPostgresAsync("pg_ctl", ["-D", Path.Combine(_root, "data"), "-w", "-t", "60", "-m", "fast", "restart"]);
    }

    public async Task DisposeAsync()
    {
        if (_root is null) return;
        NpgsqlConnection.ClearAllPools();
        await RunPostgresAsync("pg_ctl", ["-D", Path.Combine(_root, "data"), "-m", "fast", "-w", "-t", "60", "stop"]);
        Directory.Delete(_root, recursive: true);
        _root = null;
    }

    private void StopQuietly()
    {
        if (_root is null || _bin is null) return;
        try
        {
            RunPostgresAsync("pg_ctl", ["-D", Path.Combine(_root, "data"), "-m", "immediate", "-w", "stop"]).GetAwaiter().GetResult();
            Directory.Delete(_root, recursive: true);
        }
        catch (Exception)
        {
            // Best effort at process exit.
        }
    }

    private static string FindBinaries()
    {
        const string root = "/usr/lib/postgresql";
        var bin = Directory.Exists(root)
            ? Directory.GetDirectories(root).Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "pg_ctl")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0).FirstOrDefault()
            : null;
        return bin ?? throw new InvalidOperationException(
            $"PostgreSQL was not found in {root}/*/bin. Install it (tests/Inbox.Reliability.PostgreSql.Tests/ensure-postgresql.sh) or set {EnvironmentVariable} to a connection string.");
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

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}
