using System.Globalization;

namespace Inbox.Reliability.SampleHost.Demo;

/// <summary>What the sample does.</summary>
public enum SampleMode
{
    /// <summary>The job demo (progress, summary), while the webhook endpoint is served; then exit (no arguments).</summary>
    Demo = 0,

    /// <summary>Only serve the webhook endpoint until Ctrl+C (<c>--serve</c>).</summary>
    Serve = 1,

    /// <summary>Post every fixture payload to the endpoint over HTTP, wait for the pipeline, summarize, exit (<c>--replay</c>).</summary>
    Replay = 2,
}

/// <summary>The sample's own command-line options. Other arguments (<c>--urls ...</c>) are left to the host's configuration.</summary>
/// <param name="Mode">What to do.</param>
/// <param name="Jobs">How many jobs to enqueue (<c>--jobs N</c>, default 500).</param>
/// <param name="KeepRunning">Leave the host running after the summary (<c>--keep-running</c>) until Ctrl+C.</param>
/// <param name="HostArgs">The arguments that are not the sample's own, for the host's configuration.</param>
public sealed record DemoOptions(SampleMode Mode, int Jobs, bool KeepRunning, IReadOnlyList<string> HostArgs)
{
    /// <summary>The default workload size.</summary>
    public const int DefaultJobs = 500;

    private const int MinJobs = 10;
    private const int MaxJobs = 1_000_000;

    /// <summary>Reads the options, or writes what is wrong and the usage to stderr and returns null.</summary>
    public static DemoOptions? Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var jobs = DefaultJobs;
        var keepRunning = false;
        var mode = SampleMode.Demo;
        var hostArgs = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "--keep-running") keepRunning = true;
            else if (arg is "--serve" or "--replay")
            {
                var chosen = arg is "--serve" ? SampleMode.Serve : SampleMode.Replay;
                if (mode != SampleMode.Demo && mode != chosen) return Usage("--serve and --replay cannot be combined.");
                mode = chosen;
            }
            else if (arg is "--jobs" or "-n" || arg.StartsWith("--jobs=", StringComparison.Ordinal))
            {
                var value = arg.StartsWith("--jobs=", StringComparison.Ordinal) ? arg["--jobs=".Length..] : i + 1 < args.Count ? args[++i] : null;
                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out jobs) || jobs is < MinJobs or > MaxJobs)
                {
                    return Usage($"--jobs needs a number from {MinJobs} to {MaxJobs:N0} (was \"{value}\").");
                }
            }
            else if (arg is "--help" or "-h" or "-?")
            {
                Usage(null);
                return null;
            }
            else hostArgs.Add(arg);
        }

        if (mode != SampleMode.Demo && keepRunning) return Usage("--keep-running goes with the job demo (no --serve or --replay).");
        return new DemoOptions(mode, jobs, keepRunning, hostArgs);
    }

    private static DemoOptions? Usage(string? problem)
    {
        if (problem is not null) Console.Error.WriteLine(problem);
        Console.Error.WriteLine("Usage: dotnet run --project samples/Inbox.Reliability.SampleHost [-- [--jobs N] [--keep-running] | --serve | --replay] [--urls URL]");
        Console.Error.WriteLine($"  (no option)      run the job demo ({DefaultJobs} jobs) while serving the webhook endpoint, then exit");
        Console.Error.WriteLine($"  --jobs N         how many demo jobs to enqueue (default {DefaultJobs})");
        Console.Error.WriteLine("  --keep-running   keep serving after the demo's summary; stop it with Ctrl+C");
        Console.Error.WriteLine("  --serve          only serve the webhook endpoint until Ctrl+C");
        Console.Error.WriteLine("  --replay         post every payload in Fixtures/ to the endpoint over HTTP (twice, plus a forged one), print what happened, exit");
        Console.Error.WriteLine("  --urls URL       where to listen (default http://127.0.0.1:5080; also ASPNETCORE_URLS); --replay picks a free port");
        return null;
    }
}
