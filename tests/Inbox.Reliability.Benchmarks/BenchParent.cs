using System.Diagnostics;
using System.Reflection;
using System.Text.Json.Nodes;
using Inbox.Reliability.Testing;

namespace Inbox.Reliability.Benchmarks;

/// <summary>
/// The parent process: the idle measure (PostgreSQL), our runs and their medians, each run followed by one of the peers
/// (--with-peers), the claim
/// measures, then the ratios and the targets. Every figure of ours comes from a fresh child process.
/// </summary>
public static class BenchParent
{
    public static async Task<int> RunAsync(BenchOptions options, CancellationToken cancellationToken)
    {
        var failed = false;
        if (options.CaptureOnly)
        {
            var (captureMedian, captureFailed) = await RunCaptureAsync(options, cancellationToken);
            if (CaptureMeasure.IsAvailable(options.Storage))
            {
                var captureTargets = Comparison.CaptureTargets(captureMedian);
                if (options.WithPeers && options.IsPostgres)
                {
                    // The database's own single-row insert ceiling, on the same server, for the ratio ours/pgbench.
                    var pgbench = await CaptureMeasure.RunPgbenchAsync(options, cancellationToken);
                    await Console.Out.WriteLineAsync(CaptureMeasure.PgbenchRatio(captureMedian, pgbench).ToJsonString(BenchResult.Output));
                    captureTargets["capture_vs_pgbench_insert"] = CaptureMeasure.PgbenchTargetEntry(captureMedian, pgbench);
                }

                await Console.Out.WriteLineAsync(new JsonObject { ["targets"] = captureTargets }.ToJsonString(BenchResult.Output));
            }

            return captureFailed ? 1 : 0;
        }

        // 1. Idle cost first, while the database has had no other traffic (no autovacuum work pending either).
        JsonObject? idle = null;
        if (options.IsPostgres && options.IdleSeconds > 0 && !options.CaptureOnly)
        {
            idle = await RunMeasureAsync(options.IdleChildArguments(), "idle measure", cancellationToken);
            failed |= idle is null;
        }

        // 2. Our workload, --runs times per mode, each run followed by one run of the peers (--with-peers) on the same
        //    server: interleaved, so a machine that slows down or speeds up during the invocation affects both sides alike.
        if (options.WithPeers && !options.IsPostgres) await Console.Error.WriteLineAsync("[bench] --with-peers ignored: the peers run on PostgreSQL only.");
        var peerRuns = options.WithPeers && options.IsPostgres ? await PeerRuns.CreateAsync(options) : null;
        var results = options.Modes.ToDictionary(m => m, _ => new List<BenchResult>());
        for (var run = 1; run <= options.Runs; run++)
        {
            foreach (var mode in options.Modes)
            {
                var (exitCode, line) = await RunChildAsync(options.ChildArguments(mode), cancellationToken);
                var result = line is null ? null : BenchResult.FromJson(line);
                if (exitCode != 0 || result is null)
                {
                    await Console.Error.WriteLineAsync($"[bench] run {run} of mode {mode} failed (exit code {exitCode}).");
                    return 1;
                }

                await Console.Out.WriteLineAsync(result.ToJson());
                results[mode].Add(result);
            }

            if (peerRuns is not null) await peerRuns.RunOnceAsync(run, cancellationToken);
        }

        var medians = new Dictionary<string, BenchResult>();
        foreach (var mode in options.Modes)
        {
            medians[mode] = BenchResult.Median(results[mode]);
            await Console.Out.WriteLineAsync(medians[mode].ToJson());
        }

        // 3. The peers' medians.
        var peers = peerRuns is null ? new Dictionary<string, JsonObject>() : await peerRuns.MediansAsync();

        // 4. Claim time at each queue depth.
        var claims = new List<JsonObject>();
        foreach (var queued in options.ClaimSizes)
        {
            var claim = await RunMeasureAsync(options.ClaimChildArguments(queued), $"claim measure at {queued} queued", cancellationToken);
            if (claim is null) failed = true;
            else claims.Add(claim);
        }

        // 5. Webhook capture over HTTP (--capture none skips), --runs times.
        JsonObject? capture = null;
        var captureAvailable = options.Capture && CaptureMeasure.IsAvailable(options.Storage);
        if (options.Capture)
        {
            var (captureMedian, captureFailed) = await RunCaptureAsync(options, cancellationToken);
            capture = captureMedian;
            failed |= captureFailed;
        }

        // 6. Ratios ours/peer, keyed/default, and the issue's targets.
        foreach (var ratio in Comparison.Ratios(medians, peers)) await Console.Out.WriteLineAsync(ratio.ToJsonString(BenchResult.Output));
        if (options.WithPeers && options.IsPostgres)
        {
            var targets = Comparison.Targets(medians, peers, claims, idle);
            if (options.Capture && targets["targets"] is JsonObject existing)
            {
                foreach (var (name, value) in Comparison.CaptureTargets(capture, captureAvailable ? null : "not available yet: the webhook pipeline has no PostgreSQL storage"))
                {
                    existing[name] = value?.DeepClone();
                }

                // The pgbench run of the peers is the capture path's ceiling too.
                if (captureAvailable)
                {
                    var pgbench = peers.GetValueOrDefault(CaptureMeasure.PgbenchPeer);
                    await Console.Out.WriteLineAsync(CaptureMeasure.PgbenchRatio(capture, pgbench).ToJsonString(BenchResult.Output));
                    existing["capture_vs_pgbench_insert"] = CaptureMeasure.PgbenchTargetEntry(capture, pgbench);
                }
            }

            await Console.Out.WriteLineAsync(targets.ToJsonString(BenchResult.Output));
        }
        else if (captureAvailable)
        {
            await Console.Out.WriteLineAsync(new JsonObject { ["targets"] = Comparison.CaptureTargets(capture) }.ToJsonString(BenchResult.Output));
        }

        return failed ? 1 : 0;
    }

    /// <summary>
    /// The capture measure --runs times, each in a fresh child; prints each line and the median line. On a storage without
    /// the webhook pipeline's storage it prints the "not available yet" line once instead.
    /// </summary>
    private static async Task<(JsonObject? Median, bool Failed)> RunCaptureAsync(BenchOptions options, CancellationToken cancellationToken)
    {
        if (!CaptureMeasure.IsAvailable(options.Storage))
        {
            var line = CaptureMeasure.NotAvailable(options.Storage);
            await Console.Error.WriteLineAsync($"[bench] capture on {options.Storage}: {line["note"]}");
            await Console.Out.WriteLineAsync(line.ToJsonString(BenchResult.Output));
            return (null, false);
        }

        var runs = new List<JsonObject>();
        var failed = false;
        for (var run = 1; run <= options.Runs; run++)
        {
            var result = await RunMeasureAsync(options.CaptureChildArguments(), $"capture run {run}", cancellationToken);
            if (result is null) failed = true;
            else runs.Add(result);
        }

        if (runs.Count == 0) return (null, true);
        var median = Comparison.MedianLine(runs);
        await Console.Out.WriteLineAsync(median.ToJsonString(BenchResult.Output));
        return (median, failed);
    }

    /// <summary>The peers' scripts (run.sh and pgbench-capture.sh from the anchors folder), one run at a time, and their medians.</summary>
    private sealed class PeerRuns
    {
        private readonly BenchOptions _options;
        private readonly string _url;
        private readonly string[] _scripts;
        private readonly string _runScript;
        private readonly Dictionary<string, List<JsonObject>> _lines = new();

        private PeerRuns(BenchOptions options, string url, string runScript, string[] scripts)
        {
            _options = options;
            _url = url;
            _runScript = runScript;
            _scripts = scripts;
        }

        /// <summary>Finds the scripts; without them (said on stderr) every run does nothing and our figures stand alone.</summary>
        public static async Task<PeerRuns> CreateAsync(BenchOptions options)
        {
            var url = PostgresCluster.ToDatabaseUrl(Environment.GetEnvironmentVariable(PostgreSqlBenchStorage.EnvironmentVariable)!);
            var anchors = Peers.FindAnchors(out var reason);
            if (anchors is null)
            {
                await Console.Error.WriteLineAsync($"[bench] peers skipped: the anchors scripts were not found ({reason}). Our figures stand alone.");
                return new PeerRuns(options, url, "", []);
            }

            var runScript = Path.Combine(anchors, "run.sh");
            var pgbenchScript = Path.Combine(anchors, "pgbench-capture.sh");
            var hasPgbench = File.Exists(pgbenchScript);
            if (!hasPgbench) await Console.Error.WriteLineAsync($"[bench] {pgbenchScript} not found: the pgbench ceiling is skipped.");
            return new PeerRuns(options, url, runScript, hasPgbench ? [runScript, pgbenchScript] : [runScript]);
        }

        public async Task RunOnceAsync(int run, CancellationToken cancellationToken)
        {
            foreach (var script in _scripts)
            {
                await Console.Error.WriteLineAsync($"[bench] peers run {run} of {_options.Runs}: bash {script} (DATABASE_URL = the same server)");
                var clock = Stopwatch.StartNew();
                var arguments = script == _runScript ? Peers.RunArguments(_options) : [];
                var (exitCode, lines) = await Peers.RunScriptAsync(script, arguments, _url, cancellationToken);
                await Console.Error.WriteLineAsync($"[bench] {Path.GetFileName(script)} exited with {exitCode} after {clock.Elapsed.TotalSeconds:F0} s");
                foreach (var line in lines)
                {
                    if (line.ContainsKey("error"))
                    {
                        await Console.Error.WriteLineAsync($"[bench] peer failed: {line.ToJsonString(BenchResult.Output)}");
                        continue;
                    }

                    var name = Peers.Name(line); // printed by RunScriptAsync as it came
                    if (!_lines.TryGetValue(name, out var list)) _lines[name] = list = [];
                    list.Add(line);
                }
            }
        }

        public async Task<Dictionary<string, JsonObject>> MediansAsync()
        {
            var medians = new Dictionary<string, JsonObject>();
            foreach (var (name, list) in _lines)
            {
                medians[name] = Peers.Median(list);
                await Console.Out.WriteLineAsync(medians[name].ToJsonString(BenchResult.Output));
            }

            return medians;
        }
    }

    private static async Task<JsonObject?> RunMeasureAsync(IEnumerable<string> arguments, string what, CancellationToken cancellationToken)
    {
        var (exitCode, line) = await RunChildAsync(arguments, cancellationToken);
        JsonObject? json = null;
        try
        {
            json = line is null ? null : JsonNode.Parse(line) as JsonObject;
        }
        catch (System.Text.Json.JsonException)
        {
            json = null;
        }

        if (exitCode != 0 || json is null)
        {
            await Console.Error.WriteLineAsync($"[bench] {what} failed (exit code {exitCode}).");
            return null;
        }

        await Console.Out.WriteLineAsync(line);
        return json;
    }

    /// <summary>Runs this program again with <paramref name="arguments"/>; returns its exit code and last JSON line (other output goes to stderr).</summary>
    private static async Task<(int ExitCode, string? Line)> RunChildAsync(IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        await PostgreSqlBenchStorage.CheckpointAsync(cancellationToken);
        var (exitCode, lines) = await RunSelfAsync(arguments, cancellationToken);
        return (exitCode, lines.Count > 0 ? lines[^1] : null);
    }

    /// <summary>
    /// Runs this program again with <paramref name="arguments"/> (killed on cancellation); returns its exit code and every
    /// line it printed that starts with <c>{</c> (other output goes to stderr).
    /// </summary>
    internal static async Task<(int ExitCode, List<string> JsonLines)> RunSelfAsync(IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot find this process's executable.");
        var start = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        // Started as `dotnet Inbox.Reliability.Benchmarks.dll`: run the dll again the same way.
        if (Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
        {
            start.ArgumentList.Add(Assembly.GetEntryAssembly()?.Location ?? throw new InvalidOperationException("Cannot find this program's assembly."));
        }

        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {self}.");
        await using var kill = cancellationToken.Register(() =>
        {
            try
            {
                child.Kill(entireProcessTree: true);
            }
            catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // Already gone.
            }
        });
        var json = new List<string>();
        while (await child.StandardOutput.ReadLineAsync(CancellationToken.None) is { } line)
        {
            if (line.StartsWith('{')) json.Add(line);
            else if (line.Length > 0) await Console.Error.WriteLineAsync(line);
        }

        await child.WaitForExitAsync(CancellationToken.None);
        cancellationToken.ThrowIfCancellationRequested();
        return (child.ExitCode, json);
    }
}
