using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Inbox.Reliability.Benchmarks;

/// <summary>
/// The peer systems of <c>../shared/anchors</c> (graphile-worker and pg-boss through <c>run.sh</c>, the database's own insert
/// ceiling through <c>pgbench-capture.sh</c>), run on the same PostgreSQL as ours.
/// </summary>
public static class Peers
{
    public const string AnchorsVariable = "INBOX_ANCHORS_DIR";

    /// <summary>
    /// The anchors folder: <c>INBOX_ANCHORS_DIR</c>, or <c>../shared/anchors</c> next to the folder holding
    /// Inbox.Reliability.sln, found by walking up from the current directory. Null, with the reason, when not found.
    /// </summary>
    public static string? FindAnchors(out string reason)
    {
        var given = Environment.GetEnvironmentVariable(AnchorsVariable);
        if (!string.IsNullOrWhiteSpace(given))
        {
            var full = Path.GetFullPath(given);
            reason = File.Exists(Path.Combine(full, "run.sh")) ? "" : $"{AnchorsVariable} is {full}, which holds no run.sh";
            return reason.Length == 0 ? full : null;
        }

        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Inbox.Reliability.sln"))) continue;
            var anchors = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "anchors"));
            reason = File.Exists(Path.Combine(anchors, "run.sh")) ? "" : $"{Path.Combine(anchors, "run.sh")} does not exist";
            return reason.Length == 0 ? anchors : null;
        }

        reason = $"no folder above {Directory.GetCurrentDirectory()} holds Inbox.Reliability.sln (run from the repository, or set {AnchorsVariable})";
        return null;
    }

    /// <summary>
    /// Runs <c>bash script args</c> with DATABASE_URL set; every stdout line that is a JSON object is returned (and printed
    /// to stdout as received), anything else goes to stderr. Canceling kills the script and its children. The server gets a
    /// <c>CHECKPOINT</c> first, as before each of our measures (<see cref="PostgreSqlBenchStorage.CheckpointAsync"/>).
    /// </summary>
    public static async Task<(int ExitCode, List<JsonObject> Lines)> RunScriptAsync(string script, IEnumerable<string> arguments, string databaseUrl, CancellationToken cancellationToken)
    {
        await PostgreSqlBenchStorage.CheckpointAsync(cancellationToken);
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = Path.GetDirectoryName(script)! };
        start.ArgumentList.Add(script);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["DATABASE_URL"] = databaseUrl;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start bash {script}.");
        await using var kill = cancellationToken.Register(() => KillQuietly(process));
        var lines = new List<JsonObject>();
        while (await process.StandardOutput.ReadLineAsync(CancellationToken.None) is { } line)
        {
            JsonObject? json = null;
            if (line.StartsWith('{'))
            {
                try
                {
                    json = JsonNode.Parse(line) as JsonObject;
                }
                catch (System.Text.Json.JsonException)
                {
                    json = null;
                }
            }

            if (json is null)
            {
                if (line.Length > 0) await Console.Error.WriteLineAsync(line);
                continue;
            }

            await Console.Out.WriteLineAsync(line);
            await Console.Out.FlushAsync(CancellationToken.None);
            lines.Add(json);
        }

        await process.WaitForExitAsync(CancellationToken.None);
        cancellationToken.ThrowIfCancellationRequested();
        return (process.ExitCode, lines);
    }

    /// <summary>The arguments of run.sh: only the workload settings that differ from the scripts' defaults.</summary>
    public static IEnumerable<string> RunArguments(BenchOptions options)
    {
        var defaults = new BenchOptions();
        var arguments = new List<string>();
        void Add(string name, int value, int standard)
        {
            if (value == standard) return;
            arguments.Add(name);
            arguments.Add(value.ToString(CultureInfo.InvariantCulture));
        }

        Add("--jobs", options.Jobs, defaults.Jobs);
        Add("--single", options.Single, defaults.Single);
        Add("--concurrency", options.Concurrency, defaults.Concurrency);
        Add("--latency-jobs", options.LatencyJobs, defaults.LatencyJobs);
        return arguments;
    }

    /// <summary>"graphile-worker-batched", "pg-boss-default", "pgbench-single-row-insert": the name of a peer line's system and mode.</summary>
    public static string Name(JsonObject line)
    {
        var system = line["system"]?.GetValue<string>() ?? "unknown";
        var mode = line["mode"]?.GetValue<string>();
        var name = mode is null ? system : system + "-" + mode;
        return name.Replace(' ', '-');
    }

    /// <summary>
    /// The median line of several runs of one peer/mode: the first run's line with every numeric field replaced by the
    /// median over the runs (the same median as ours), plus "summary":"median" and "runs".
    /// </summary>
    public static JsonObject Median(IReadOnlyList<JsonObject> runs)
    {
        var median = new JsonObject { ["summary"] = "median" };
        foreach (var (name, value) in runs[0])
        {
            if (value is JsonValue v && v.TryGetValue<double>(out _))
            {
                var values = runs.Select(r => r[name] is JsonValue x && x.TryGetValue<double>(out var d) ? d : double.NaN).Where(double.IsFinite);
                median[name] = Math.Round(BenchResult.MedianOf(values), 2);
            }
            else
            {
                median[name] = value?.DeepClone();
            }
        }

        median["runs"] = runs.Count;
        return median;
    }

    private static void KillQuietly(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Already gone.
        }
    }
}
