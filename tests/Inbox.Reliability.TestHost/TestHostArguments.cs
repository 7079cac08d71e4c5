using System.Globalization;

namespace Inbox.Reliability.TestHost;

/// <summary>The child host's command line: which storage to use and what work the handler does.</summary>
public sealed class TestHostArguments
{
    public const string Usage = """
        Inbox.Reliability.TestHost: runs the job engine in this process until stdin closes or SIGTERM.
        Prints READY on stdout once the engine has started. Logs (warnings and errors) go to stderr.

          --mode <name>           jobs (default): runs a job handler on --queue;
                                  webhooks: a Kestrel app on --urls with the webhook pipeline (Z-API, secret
                                  "crash-secret", MapInboxWebhooks("/webhooks")) whose event handler appends
                                  "externalId chatId" to the handler log; --lease-ms/--heartbeat-ms apply to the
                                  pipeline's queues (inbox.ingest, inbox.dispatch)
          --urls <url>            webhooks mode: the address to listen on, e.g. http://127.0.0.1:5123 (required)
          --storage <name>        storage provider: sqlite or postgres (default sqlite)
          --connection <string>   the storage's connection string, e.g. "Data Source=/tmp/inbox.db" (required)
          --schema <name>         postgres: the schema (default inbox)
          --log <path>            the handler log: one line "jobId attempt key seq" per handler run (required)
          --queue <name>          the queue the handler runs (default crash)
          --workload <name>       what the handler does: log (append a line, then work; default log)
          --concurrency <n>       jobs run at once (default 8)
          --work-ms <n>           simulated work per job after the line is logged, in ms (default 2)
          --lease-ms <n>          lease duration in ms (default 2000)
          --heartbeat-ms <n>      lease renewal interval in ms (default 500)
          --reaper-ms <n>         expired-lease reaper interval in ms (default 500)
          --worker <name>         the worker (lease owner) name (default machine:pid)
          --media-root <path>     webhooks mode: download media into a file-system media store in this folder;
                                  the handler log line then ends with the media status and key
          --media-max-mb <n>      webhooks mode: the media size limit in MB (default 100)
          --media-wait-ms <n>     webhooks mode: how long a chat waits for a pending media (default 30000)
          --running-dir <path>    keyed jobs hold a marker file per key there while their handler runs; a second
                                  handler of the same key at once (in any process) appends to overlaps.log there
        """;

    public string Mode { get; private set; } = "jobs";

    public string Urls { get; private set; } = "";

    public string Storage { get; private set; } = "sqlite";

    public string Connection { get; private set; } = "";

    public string Schema { get; private set; } = "inbox";

    public string? RunningDir { get; private set; }

    public string LogPath { get; private set; } = "";

    public string Queue { get; private set; } = "crash";

    public string Workload { get; private set; } = "log";

    public int Concurrency { get; private set; } = 8;

    public TimeSpan Work { get; private set; } = TimeSpan.FromMilliseconds(2);

    public TimeSpan Lease { get; private set; } = TimeSpan.FromMilliseconds(2000);

    public TimeSpan Heartbeat { get; private set; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan ReaperInterval { get; private set; } = TimeSpan.FromMilliseconds(500);

    public string? Worker { get; private set; }

    public string? MediaRoot { get; private set; }

    public int MediaMaxMegabytes { get; private set; } = 100;

    public TimeSpan MediaWait { get; private set; } = TimeSpan.FromSeconds(30);

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> naming every problem.</summary>
    public static TestHostArguments Parse(IReadOnlyList<string> args)
    {
        var parsed = new TestHostArguments();
        var errors = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (i + 1 >= args.Count)
            {
                errors.Add($"{name} needs a value.");
                break;
            }

            var value = args[++i];
            switch (name)
            {
                case "--mode": parsed.Mode = value; break;
                case "--urls": parsed.Urls = value; break;
                case "--storage": parsed.Storage = value; break;
                case "--connection": parsed.Connection = value; break;
                case "--schema": parsed.Schema = value; break;
                case "--running-dir": parsed.RunningDir = value; break;
                case "--log": parsed.LogPath = value; break;
                case "--queue": parsed.Queue = value; break;
                case "--workload": parsed.Workload = value; break;
                case "--concurrency": parsed.Concurrency = Int(name, value, 1, errors); break;
                case "--work-ms": parsed.Work = TimeSpan.FromMilliseconds(Int(name, value, 0, errors)); break;
                case "--lease-ms": parsed.Lease = TimeSpan.FromMilliseconds(Int(name, value, 1, errors)); break;
                case "--heartbeat-ms": parsed.Heartbeat = TimeSpan.FromMilliseconds(Int(name, value, 1, errors)); break;
                case "--reaper-ms": parsed.ReaperInterval = TimeSpan.FromMilliseconds(Int(name, value, 1, errors)); break;
                case "--worker": parsed.Worker = value; break;
                case "--media-root": parsed.MediaRoot = value; break;
                case "--media-max-mb": parsed.MediaMaxMegabytes = Int(name, value, 1, errors); break;
                case "--media-wait-ms": parsed.MediaWait = TimeSpan.FromMilliseconds(Int(name, value, 0, errors)); break;
                default: errors.Add($"Unknown argument {name}."); break;
            }
        }

        if (parsed.Mode is not ("jobs" or "webhooks")) errors.Add($"--mode {parsed.Mode} is not supported (supported: jobs, webhooks).");
        if (parsed.Mode == "webhooks" && string.IsNullOrWhiteSpace(parsed.Urls)) errors.Add("--urls is required in webhooks mode.");
        if (parsed.Storage is not ("sqlite" or "postgres")) errors.Add($"--storage {parsed.Storage} is not supported (supported: sqlite, postgres).");
        if (string.IsNullOrWhiteSpace(parsed.Connection)) errors.Add("--connection is required.");
        if (string.IsNullOrWhiteSpace(parsed.LogPath)) errors.Add("--log is required.");
        if (parsed.Workload != "log") errors.Add($"--workload {parsed.Workload} is not supported (supported: log).");
        if (errors.Count > 0) throw new ArgumentException(string.Join(Environment.NewLine, errors));
        return parsed;
    }

    private static int Int(string name, string value, int min, List<string> errors)
    {
        if (int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min) return n;
        errors.Add($"{name} must be an integer of at least {min} (was \"{value}\").");
        return min;
    }
}
