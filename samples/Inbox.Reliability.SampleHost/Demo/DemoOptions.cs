using System.Globalization;

namespace Inbox.Reliability.SampleHost.Demo;

/// <summary>The sample's own command-line options. Other arguments are left to the host's configuration.</summary>
/// <param name="Jobs">How many jobs to enqueue (<c>--jobs N</c>, default 500).</param>
/// <param name="KeepRunning">Leave the host running after the summary (<c>--keep-running</c>) until Ctrl+C.</param>
public sealed record DemoOptions(int Jobs, bool KeepRunning)
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
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "--keep-running") keepRunning = true;
            else if (arg is "--jobs" or "-n" || arg.StartsWith("--jobs=", StringComparison.Ordinal))
            {
                var value = arg.StartsWith("--jobs=", StringComparison.Ordinal) ? arg["--jobs=".Length..] : i + 1 < args.Count ? args[++i] : null;
                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out jobs) || jobs is < MinJobs or > MaxJobs)
                {
                    return Usage($"--jobs needs a number from {MinJobs} to {MaxJobs:N0} (was \"{value}\").");
                }
            }
        }

        return new DemoOptions(jobs, keepRunning);
    }

    private static DemoOptions? Usage(string problem)
    {
        Console.Error.WriteLine(problem);
        Console.Error.WriteLine("Usage: dotnet run --project samples/Inbox.Reliability.SampleHost [-- [--jobs N] [--keep-running]]");
        Console.Error.WriteLine($"  --jobs N         how many demo jobs to enqueue (default {DefaultJobs})");
        Console.Error.WriteLine("  --keep-running   keep the host running after the summary; stop it with Ctrl+C");
        return null;
    }
}
