using System.Globalization;

namespace Inbox.Reliability.Benchmarks;

/// <summary>The command line: the workload (same names and defaults as the peer scripts in anchors/) and how to run it.</summary>
public sealed class BenchOptions
{
    public const string UsageText = """
        Usage: dotnet run -c Release --project tests/Inbox.Reliability.Benchmarks -- --storage sqlite|postgres
                 [--runs 3] [--jobs 20000] [--single 2000] [--concurrency 16] [--latency-jobs 300] [--keys 1000]
                 [--mode default|keyed|removed|both|all] [--prefetch N] [--with-peers] [--no-warmup]
                 [--claim-sizes 10000,1000000|none] [--idle-seconds 20]
          --storage       sqlite, or postgres: INBOX_BENCH_POSTGRES = a connection string, or when it is not set a throwaway
                          PostgreSQL cluster is started for the whole invocation (a fresh schema per run either way)
          --runs          runs per mode (and per peer with --with-peers); each run of each mode is a fresh child process on a fresh database
          --jobs          jobs enqueued in batches of 1000 (step 2)
          --single        jobs enqueued one by one from 8 concurrent callers (step 1)
          --concurrency   concurrent handlers of the worker
          --latency-jobs  jobs enqueued 10 ms apart on the idle worker, for enqueue-to-start latency
          --keys          ordering keys the jobs of the keyed mode spread over
          --mode          which modes to run: default (unkeyed jobs), keyed (over --keys ordering keys), removed (unkeyed, on a
                          queue with RemoveOnComplete: completed jobs deleted, as graphile-worker does), both (default and
                          keyed), all (the three; the default)
          --with-peers    also run ../shared/anchors/run.sh and pgbench-capture.sh on the same PostgreSQL (INBOX_ANCHORS_DIR
                          overrides the folder) and print ratios ours/peer and the issue's targets (PostgreSQL only)
          --prefetch N    jobs claimed ahead of the 16 handlers (default 500, as graphile-worker's batched local queue)
          --no-warmup     skip the small warm-up runs (2 to 8) before each measured run
          --claim-sizes   queue depths at which to time claims of 100 (default 10000,1000000 for postgres, none for sqlite)
          --idle-seconds  window of the idle-cost measure (queries/s with workers running and no jobs; postgres only; 0 skips)
          --capture       on (default) or none: also measure webhook capture over HTTP (Kestrel on loopback, Z-API
                          webhooks: 32 clients, ack latency at 2,000/s offered, end-to-end to the handler) and without HTTP
                          (IInboxCapture from 32 callers), --runs times, on the --storage
          --capture-only  run only the capture measure (no job-engine runs, claim or idle measures; with --with-peers on
                          postgres, pgbench-capture.sh only, for the ratio capture/pgbench)
          --media         run only the media measure: IMediaStore.PutAsync into fauxqs (S3) and the file system for 1 KB, 1 MB and
                          20 MB objects, next to plain PutObjectAsync calls on the same fauxqs; MB/s, media/s, peak RSS, ratio
                          ours/plain (fauxqs is installed with npm into ~/.cache/inbox-fauxqs when missing and started here)
          --measure claim --queued N | --measure idle --seconds S | --measure capture
                          run one measure once in this process and print its JSON line (what the parent runs as a child)
        Prints one JSON line per run per mode, then one "summary":"median" line per mode, then the measures, peers, ratios, targets.
        """;

    public string Storage { get; private set; } = "sqlite";
    public int Runs { get; private set; } = 3;
    public int Jobs { get; private set; } = 20000;
    public int Single { get; private set; } = 2000;
    public int Concurrency { get; private set; } = 16;
    public int LatencyJobs { get; private set; } = 300;
    public int Keys { get; private set; } = 1000;

    /// <summary>Jobs claimed ahead of the handlers (JobHandlerOptions.Prefetch). Default 500, the size of graphile-worker's local queue in its batched mode.</summary>
    public int Prefetch { get; private set; } = 500;
    public bool WithPeers { get; private set; }

    /// <summary>Run the small warm-up workload in the child before the measured run, until the runtime has little left to compile (default on; --no-warmup turns it off).</summary>
    public bool Warmup { get; private set; } = true;

    /// <summary>The warm-up: the same steps on a tenth of the jobs.</summary>
    public BenchOptions ForWarmup()
    {
        var copy = (BenchOptions)MemberwiseClone();
        copy.Jobs = Math.Max(1000, Jobs / 10);
        copy.Single = Math.Max(200, Single / 10);
        copy.LatencyJobs = Math.Min(LatencyJobs, 30);
        return copy;
    }

    public IReadOnlyList<string> Modes { get; private set; } = [BenchModes.Default, BenchModes.Keyed, BenchModes.Removed];

    /// <summary>Set in a child process: run this one mode once and print its JSON line.</summary>
    public bool Child { get; private set; }

    /// <summary>A measure to run once in this process instead of the workload: <see cref="BenchMeasures.Claim"/> or <see cref="BenchMeasures.Idle"/>.</summary>
    public string? Measure { get; private set; }

    /// <summary>The parent: run the capture measure (default on; --capture none turns it off).</summary>
    public bool Capture { get; private set; } = true;

    /// <summary>The parent: run only the capture measure.</summary>
    public bool CaptureOnly { get; private set; }

    /// <summary>Run only the media store measure (<see cref="MediaMeasure"/>), --runs times; nothing else.</summary>
    public bool Media { get; private set; }

    /// <summary>The claim measure: jobs queued before the claims are timed.</summary>
    public int Queued { get; private set; } = 10_000;

    /// <summary>The idle measure: the window over which the database's transactions are counted.</summary>
    public int Seconds { get; private set; } = 20;

    /// <summary>The parent: the idle measure's window in seconds; 0 skips it.</summary>
    public int IdleSeconds { get; private set; } = 20;

    private IReadOnlyList<int>? _claimSizes;

    /// <summary>The parent: the queue depths of the claim measure (default 10,000 and 1,000,000 on PostgreSQL, none on SQLite).</summary>
    public IReadOnlyList<int> ClaimSizes => _claimSizes ?? (IsPostgres ? [10_000, 1_000_000] : []);

    public bool IsPostgres => Storage is "postgres" or "postgresql";

    public int SingleCallers => 8;
    public int BatchSize => 1000;
    public int Total => Single + Jobs;

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> with a message for the user.</summary>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            int Number(int min)
            {
                var text = Value();
                if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min)
                    throw new ArgumentException($"{arg} must be a whole number of at least {min} (was \"{text}\").");
                return n;
            }

            switch (arg)
            {
                case "--storage": options.Storage = Value().ToLowerInvariant(); break;
                case "--runs": options.Runs = Number(1); break;
                case "--jobs": options.Jobs = Number(0); break;
                case "--single": options.Single = Number(0); break;
                case "--concurrency": options.Concurrency = Number(1); break;
                case "--latency-jobs": options.LatencyJobs = Number(1); break;
                case "--keys": options.Keys = Number(1); break;
                case "--prefetch": options.Prefetch = Number(0); break;
                case "--with-peers": options.WithPeers = true; break;
                case "--no-warmup": options.Warmup = false; break;
                case "--child": options.Child = true; break;
                case "--queued": options.Queued = Number(1); break;
                case "--seconds": options.Seconds = Number(1); break;
                case "--idle-seconds": options.IdleSeconds = Number(0); break;
                case "--capture-only": options.CaptureOnly = true; break;
                case "--media": options.Media = true; break;
                case "--capture":
                    var capture = Value().ToLowerInvariant();
                    options.Capture = capture switch
                    {
                        "none" => false,
                        "on" or "sqlite" or "postgres" => true,
                        _ => throw new ArgumentException($"--capture must be on or none (was \"{capture}\")."),
                    };
                    break;
                case "--measure":
                    var measure = Value().ToLowerInvariant();
                    options.Measure = measure is BenchMeasures.Claim or BenchMeasures.Idle or BenchMeasures.Capture
                        ? measure
                        : throw new ArgumentException($"--measure must be claim, idle or capture (was \"{measure}\").");
                    break;
                case "--claim-sizes":
                    var sizes = Value();
                    options._claimSizes = sizes.Equals("none", StringComparison.OrdinalIgnoreCase)
                        ? []
                        : sizes.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t =>
                            int.TryParse(t.Replace("_", "", StringComparison.Ordinal), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 1
                                ? n
                                : throw new ArgumentException($"--claim-sizes must be whole numbers of at least 1, separated by commas, or none (was \"{sizes}\").")).ToArray();
                    break;
                case "--mode":
                    var mode = Value().ToLowerInvariant();
                    options.Modes = mode switch
                    {
                        BenchModes.Default or BenchModes.Keyed or BenchModes.Removed => [mode],
                        "both" => [BenchModes.Default, BenchModes.Keyed],
                        "all" => [BenchModes.Default, BenchModes.Keyed, BenchModes.Removed],
                        _ => throw new ArgumentException($"--mode must be default, keyed, removed, both or all (was \"{mode}\")."),
                    };
                    break;
                default: throw new ArgumentException($"Unknown argument \"{arg}\".");
            }
        }

        if (options.CaptureOnly && !options.Capture) throw new ArgumentException("--capture-only and --capture none contradict each other.");
        if (options.Total == 0) throw new ArgumentException("--jobs and --single are both 0: nothing to process.");
        if (options.Child && options.Measure is null && !options.Media && options.Modes.Count != 1) throw new ArgumentException("--child runs exactly one --mode.");
        return options;
    }

    /// <summary>The arguments of a child process that runs <paramref name="mode"/> once.</summary>
    public IEnumerable<string> ChildArguments(string mode) =>
    [
        "--child", "--mode", mode, "--storage", Storage,
        "--jobs", Jobs.ToString(CultureInfo.InvariantCulture), "--single", Single.ToString(CultureInfo.InvariantCulture),
        "--concurrency", Concurrency.ToString(CultureInfo.InvariantCulture), "--latency-jobs", LatencyJobs.ToString(CultureInfo.InvariantCulture),
        "--keys", Keys.ToString(CultureInfo.InvariantCulture), "--prefetch", Prefetch.ToString(CultureInfo.InvariantCulture), .. (Warmup ? Array.Empty<string>() : ["--no-warmup"]),
    ];

    /// <summary>The arguments of a child process that runs the claim measure at <paramref name="queued"/> jobs.</summary>
    public IEnumerable<string> ClaimChildArguments(int queued) =>
        ["--child", "--measure", BenchMeasures.Claim, "--storage", Storage, "--queued", queued.ToString(CultureInfo.InvariantCulture)];

    /// <summary>The arguments of a child process that runs the capture measure.</summary>
    public IEnumerable<string> CaptureChildArguments() => ["--child", "--measure", BenchMeasures.Capture, "--storage", Storage];

    /// <summary>The arguments of a child process that runs the idle measure.</summary>
    public IEnumerable<string> IdleChildArguments() =>
        ["--child", "--measure", BenchMeasures.Idle, "--storage", Storage, "--seconds", IdleSeconds.ToString(CultureInfo.InvariantCulture)];
}

public static class BenchMeasures
{
    /// <summary>Claim time at a queue depth: <see cref="ClaimMeasure"/>.</summary>
    public const string Claim = "claim";

    /// <summary>Queries per second of an idle host: <see cref="IdleMeasure"/>.</summary>
    public const string Idle = "idle";

    /// <summary>Webhook capture over HTTP and end-to-end latency: <see cref="CaptureMeasure"/>.</summary>
    public const string Capture = "capture";
}

public static class BenchModes
{
    /// <summary>Jobs without an ordering key.</summary>
    public const string Default = "default";

    /// <summary>Jobs spread over <see cref="BenchOptions.Keys"/> ordering keys (per-key FIFO).</summary>
    public const string Keyed = "keyed";

    /// <summary>Jobs without an ordering key on a queue with <c>RemoveOnComplete</c>: deleted when they complete (graphile-worker's way).</summary>
    public const string Removed = "removed";
}
