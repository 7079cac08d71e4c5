using System.Diagnostics;
using System.Reflection;
using Inbox.Reliability.Benchmarks;

// The parent runs each run of each mode in a fresh child process (this executable with --child), so the peak
// RSS it reports belongs to that run alone, then prints the medians. A child runs one mode once.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
    BenchStorages.Check(options.Storage);
}
catch (Exception ex) when (ex is ArgumentException or NotSupportedException)
{
    await Console.Error.WriteLineAsync(ex.Message);
    if (ex is ArgumentException) await Console.Error.WriteLineAsync(BenchOptions.UsageText);
    return 2;
}

if (options.Child)
{
    // Warm-up on a throwaway database: a host serving traffic runs jitted code, so the measured run should too.
    if (options.Warmup)
    {
        await using var warmupStorage = BenchStorages.Create(options.Storage);
        await BenchRun.RunAsync(options.ForWarmup(), options.Modes[0], warmupStorage);
    }

    await using var storage = BenchStorages.Create(options.Storage);
    var result = await BenchRun.RunAsync(options, options.Modes[0], storage);
    await Console.Out.WriteLineAsync(result.ToJson());
    return 0;
}

if (options.WithPeers && options.Storage == "sqlite")
{
    await Console.Error.WriteLineAsync("[bench] --with-peers ignored: the peers run on PostgreSQL only.");
}

var results = options.Modes.ToDictionary(m => m, _ => new List<BenchResult>());
for (var run = 1; run <= options.Runs; run++)
{
    foreach (var mode in options.Modes)
    {
        var (exitCode, line) = await RunChildAsync(options.ChildArguments(mode));
        var result = line is null ? null : BenchResult.FromJson(line);
        if (exitCode != 0 || result is null)
        {
            await Console.Error.WriteLineAsync($"[bench] run {run} of mode {mode} failed (exit code {exitCode}).");
            return 1;
        }

        await Console.Out.WriteLineAsync(result.ToJson());
        results[mode].Add(result);
    }
}

foreach (var mode in options.Modes)
{
    await Console.Out.WriteLineAsync(BenchResult.Median(results[mode]).ToJson());
}

return 0;

static async Task<(int ExitCode, string? Line)> RunChildAsync(IEnumerable<string> arguments)
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
    string? json = null;
    while (await child.StandardOutput.ReadLineAsync() is { } line)
    {
        if (line.StartsWith('{')) json = line;
        else if (line.Length > 0) await Console.Error.WriteLineAsync(line);
    }

    await child.WaitForExitAsync();
    return (child.ExitCode, json);
}
