using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Inbox.Reliability.AspNetCore;
using Inbox.Reliability.Capture;
using Inbox.Reliability.Dispatch;
using Inbox.Reliability.Storage;
using Inbox.Reliability.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.Benchmarks;

/// <summary>
/// Webhook capture over HTTP: a real WebApplication (Kestrel on 127.0.0.1, dynamic port) with
/// <c>AddInboxReliability().UseSqlite(...)</c> or <c>.UsePostgreSql(...)</c>, <c>.AddZApi(...)</c>, <c>MapInboxWebhooks("/webhooks")</c>
/// and an <see cref="IInboxEventHandler"/> that records end-to-end latency, driven by HttpClient in this same process:
/// 1. throughput from 32 closed-loop clients; 2. ack latency at 2,000 webhooks/s offered (open loop);
/// 3. end-to-end (send to handler) latency of the webhooks of step 2 (and how busy the whole machine was meanwhile, every
/// process on every core: at 2,000/s the pipeline's ingest and dispatch share the 2 cores with the client and the
/// database); 4. the same capture without HTTP:
/// <see cref="IInboxCapture.CaptureAsync(string, string, ReadOnlyMemory{byte}, IReadOnlyDictionary{string, string}, CancellationToken)"/>
/// from 32 concurrent callers (on 2 cores the HTTP client and Kestrel share the CPU with the database; this is the
/// capture path alone); 5. steps 1, 2 and 4 again on an enqueue-only host (<c>ProcessJobs = false</c>, a web tier whose jobs
/// other hosts would run; nothing processes meanwhile); 6. the HTTP floor: the same client, server and bodies against an
/// endpoint that reads the body and answers, storing nothing (what HTTP on loopback alone allows on this machine). With <c>--with-peers</c> on PostgreSQL, <see cref="RunPgbenchAsync"/> measures the database's own
/// single-row insert ceiling on the same server for the ratio.
/// </summary>
public static class CaptureMeasure
{
    public const int Clients = 32;
    public const int Webhooks = 20_000;
    public const int OfferedPerS = 2_000;
    public const int Chats = 200;
    public const int WarmupWebhooks = 4_000;
    public const int MaxInFlight = 1_000;
    public const string Secret = "bench";
    public const string Instance = "inst-1";

    /// <summary>True when the storage's provider implements the webhook pipeline's <see cref="IInboxStore"/>.</summary>
    public static bool IsAvailable(string storage) => storage switch
    {
        "sqlite" => HasInboxStore(typeof(SqliteBuilderExtensions).Assembly),
        "postgres" or "postgresql" => HasInboxStore(typeof(PostgreSqlBuilderExtensions).Assembly),
        _ => false,
    };

    private static bool HasInboxStore(System.Reflection.Assembly assembly) =>
        assembly.GetTypes().Any(t => t is { IsClass: true, IsAbstract: false } && typeof(IInboxStore).IsAssignableFrom(t));

    /// <summary>The line printed instead of figures when the storage has no webhook pipeline storage.</summary>
    public static JsonObject NotAvailable(string storage) => new()
    {
        ["system"] = "inbox-reliability",
        ["measure"] = BenchMeasures.Capture,
        ["storage"] = storage is "postgresql" ? "postgres" : storage,
        ["available"] = false,
        ["note"] = "not available yet: the webhook pipeline has no " + (storage is "sqlite" ? "SQLite" : "PostgreSQL") + " storage (no IInboxStore implementation)",
    };

    public static async Task<JsonObject> RunAsync(BenchOptions options, IBenchStorage storage)
    {
        if (!IsAvailable(storage.Name)) return NotAvailable(storage.Name);

        var where = await storage.PrepareAsync();
        await Console.Error.WriteLineAsync($"[bench] capture: {storage.Name} at {where}");

        var recorder = new EndToEndRecorder();
        var (app, url) = await StartAppAsync(storage, recorder, processJobs: true);

        using var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = MaxInFlight,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            UseProxy = false,
        };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
        var phases = new BenchRun.PhaseLog("capture");

        // Warm-up: every path the measures take (closed loop, open loop, in-process), long enough for tiered compilation
        // to reach its optimized code as in a host that has been serving for a while; 32 open connections; the pipeline drained.
        var warm = await ClosedLoopAsync(client, url, "w", WarmupWebhooks, Clients);
        var warmOpen = await OpenLoopAsync(client, url, "wo", WarmupWebhooks / 2, OfferedPerS);
        await InProcessAsync(app.Services.GetRequiredService<IInboxCapture>(), "wp", WarmupWebhooks / 4, Clients);
        await recorder.WaitAsync("w", WarmupWebhooks, TimeSpan.FromSeconds(120));
        await recorder.WaitAsync("wo", WarmupWebhooks / 2 - warmOpen.Non2xx, TimeSpan.FromSeconds(120));
        await recorder.WaitAsync("wp", WarmupWebhooks / 4, TimeSpan.FromSeconds(120));
        foreach (var (status, count) in warmOpen.Statuses) warm.Statuses.AddOrUpdate(status, count, (_, c) => c + count);

        // On 2 busy cores the runtime's background compiler falls behind: let it finish the optimized code of what the
        // warm-up made hot, as a host serving for minutes would have it, then warm the optimized code once more.
        await Jit.SettledAsync();
        var warmAgain = await ClosedLoopAsync(client, url, "w2", WarmupWebhooks / 2, Clients);
        await recorder.WaitAsync("w2", WarmupWebhooks / 2, TimeSpan.FromSeconds(120));
        await Jit.SettledAsync();
        foreach (var (status, count) in warmAgain.Statuses) warm.Statuses.AddOrUpdate(status, count, (_, c) => c + count);
        warm = warm with { Non2xx = warm.Non2xx + warmOpen.Non2xx + warmAgain.Non2xx };
        await phases.MarkAsync($"warm-up ({2 * WarmupWebhooks} webhooks over HTTP, {WarmupWebhooks / 4} in-process, then until the JIT settled, non-2xx {warm.Non2xx})");

        // 1. Throughput: 32 closed-loop clients.
        var clock = Stopwatch.StartNew();
        var burst = await ClosedLoopAsync(client, url, "t", Webhooks, Clients);
        var captureSeconds = burst.LastSuccess.TotalSeconds;
        await phases.MarkAsync($"throughput ({Webhooks} webhooks, {Clients} clients, non-2xx {burst.Non2xx})");
        // Let the ingest and dispatch queues burn the backlog down before the latency steps (also a figure of its own).
        var drained = await recorder.WaitAsync("t", Webhooks, TimeSpan.FromSeconds(300));
        var handledSeconds = clock.Elapsed.TotalSeconds;
        await phases.MarkAsync($"backlog handled ({recorder.Count("t")} of {Webhooks} events seen by the handler)");

        // 2 + 3. Open loop at 2,000/s offered: ack latency per request, end-to-end latency in the handler.
        var open = await OpenLoopAsync(client, url, "l", Webhooks, OfferedPerS);
        await phases.MarkAsync($"open loop ({Webhooks} webhooks at {OfferedPerS}/s offered, achieved {open.AchievedPerS:F0}/s, non-2xx {open.Non2xx}, late sends {open.Late})");
        var allSeen = await recorder.WaitAsync("l", Webhooks - open.Non2xx, TimeSpan.FromSeconds(120));
        await phases.MarkAsync($"end-to-end ({recorder.Count("l")} events seen)");
        var e2e = recorder.Samples("l");

        // 4. The capture path without HTTP: IInboxCapture from 32 concurrent callers (the pipeline works meanwhile, as in step 1).
        var inProcess = await InProcessAsync(app.Services.GetRequiredService<IInboxCapture>(), "p", Webhooks, Clients);
        await phases.MarkAsync($"in-process capture ({Webhooks} webhooks, {Clients} callers, not stored {inProcess.NotStored})");
        await app.StopAsync();
        await app.DisposeAsync();

        // 5. The same captures on an enqueue-only host (ProcessJobs = false: a web tier whose jobs other hosts run), on the
        // same database: nothing else works on these 2 cores meanwhile. Its webhooks stay captured (the schema goes at the end).
        var (web, webUrl) = await StartAppAsync(storage, recorder, processJobs: false);
        await ClosedLoopAsync(client, webUrl, "ew", WarmupWebhooks / 2, Clients);
        await InProcessAsync(web.Services.GetRequiredService<IInboxCapture>(), "ewp", WarmupWebhooks / 4, Clients);
        await Jit.SettledAsync();
        var webBurst = await ClosedLoopAsync(client, webUrl, "et", Webhooks, Clients);
        var webOpen = await OpenLoopAsync(client, webUrl, "el", Webhooks, OfferedPerS);
        var webInProcess = await InProcessAsync(web.Services.GetRequiredService<IInboxCapture>(), "ep", Webhooks, Clients);
        await phases.MarkAsync($"enqueue-only host ({Webhooks} webhooks from {Clients} clients, {Webhooks} at {OfferedPerS}/s, {Webhooks} in-process; non-2xx {webBurst.Non2xx + webOpen.Non2xx})");

        // 6. The HTTP floor: the same client, server and bodies against an endpoint that reads the body and answers as the
        // webhook endpoint does, storing nothing: what HTTP on loopback alone costs on this machine.
        var httpOnlyUrl = new Uri(webUrl, HttpOnlyPath);
        await ClosedLoopAsync(client, httpOnlyUrl, "hw", WarmupWebhooks / 2, Clients);
        var httpOnly = await ClosedLoopAsync(client, httpOnlyUrl, "h", Webhooks, Clients);
        await phases.MarkAsync($"HTTP only ({Webhooks} requests from {Clients} clients, nothing stored, non-2xx {httpOnly.Non2xx})");
        var peak = ProcessMemory.PeakRssMb();
        await web.StopAsync();
        await web.DisposeAsync();

        var result = new JsonObject
        {
            ["system"] = "inbox-reliability",
            ["version"] = BenchRun.PackageVersion(),
            ["measure"] = BenchMeasures.Capture,
            ["storage"] = storage.Name,
            ["clients"] = Clients,
            ["webhooks"] = Webhooks,
            ["capture_per_s"] = Math.Round(Webhooks / captureSeconds),
            ["capture_inproc_per_s"] = Math.Round(Webhooks / inProcess.Elapsed.TotalSeconds),
            ["handled_per_s"] = drained ? Math.Round(Webhooks / handledSeconds) : null,
            ["ack_ms_p50"] = Ms(BenchResult.Percentile(open.AckMs, 0.5)),
            ["ack_ms_p99"] = Ms(BenchResult.Percentile(open.AckMs, 0.99)),
            ["offered_per_s"] = OfferedPerS,
            ["achieved_per_s"] = Math.Round(open.AchievedPerS),
            ["ack_machine_busy_pct"] = Ms(open.MachineBusyPercent),
            ["e2e_ms_p50"] = Ms(BenchResult.Percentile(e2e, 0.5)),
            ["e2e_ms_p99"] = Ms(BenchResult.Percentile(e2e, 0.99)),
            ["e2e_seen"] = e2e.Count,
            ["non_2xx"] = warm.Non2xx + burst.Non2xx + open.Non2xx,
            ["inproc_not_stored"] = inProcess.NotStored,
            ["enqueue_only_capture_per_s"] = Math.Round(Webhooks / webBurst.LastSuccess.TotalSeconds),
            ["enqueue_only_capture_inproc_per_s"] = Math.Round(Webhooks / webInProcess.Elapsed.TotalSeconds),
            ["enqueue_only_ack_ms_p50"] = Ms(BenchResult.Percentile(webOpen.AckMs, 0.5)),
            ["enqueue_only_ack_ms_p99"] = Ms(BenchResult.Percentile(webOpen.AckMs, 0.99)),
            ["enqueue_only_ack_machine_busy_pct"] = Ms(webOpen.MachineBusyPercent),
            ["enqueue_only_non_2xx"] = webBurst.Non2xx + webOpen.Non2xx + webInProcess.NotStored,
            ["http_only_per_s"] = httpOnly.Non2xx == 0 ? Math.Round(Webhooks / httpOnly.LastSuccess.TotalSeconds) : null,
            ["peak_rss_mb"] = peak,
        };
        if (!allSeen) result["note"] = $"only {e2e.Count} of {Webhooks - open.Non2xx} events of the open loop reached the handler within 120 s";
        if (warm.Non2xx + burst.Non2xx + open.Non2xx > 0)
        {
            var statuses = warm.Statuses.Concat(burst.Statuses).Concat(open.Statuses).GroupBy(s => s.Key).ToDictionary(g => g.Key, g => g.Sum(s => s.Value));
            result["non_2xx_statuses"] = new JsonObject(statuses.Select(s => KeyValuePair.Create(s.Key, (JsonNode?)JsonValue.Create(s.Value))));
        }

        return result;
    }

    /// <summary>
    /// Starts the host: Kestrel on 127.0.0.1 (dynamic port), the storage under test, Z-API with a secret, the end-to-end
    /// handler, the webhook endpoint; with <paramref name="processJobs"/> false an enqueue-only host (no job workers).
    /// </summary>
    private static async Task<(WebApplication App, Uri Url)> StartAppAsync(IBenchStorage storage, EndToEndRecorder recorder, bool processJobs)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(recorder);
        var inbox = builder.Services.AddInboxReliability(o => o.ProcessJobs = processJobs);
        storage.Configure(inbox);
        inbox.AddZApi(o => o.WebhookSecret = Secret).AddEventHandler<EndToEndHandler>();

        var app = builder.Build();
        app.MapInboxWebhooks("/webhooks");
        app.MapPost(HttpOnlyPath, HttpOnlyAsync);
        await app.StartAsync();
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        return (app, new Uri(address, $"/webhooks/zapi/{Instance}?secret={Secret}"));
    }

    /// <summary>The route of the HTTP floor (step 6): a body read and an answer like the webhook endpoint's, nothing stored.</summary>
    private const string HttpOnlyPath = "/http-only";

    private static readonly byte[] HttpOnlyAnswer = Encoding.UTF8.GetBytes("""{"status":"stored","id":1234567}""");

    private static async Task HttpOnlyAsync(HttpContext context)
    {
        var body = new byte[context.Request.ContentLength ?? 0];
        var read = 0;
        int n;
        while (read < body.Length && (n = await context.Request.Body.ReadAsync(body.AsMemory(read))) > 0) read += n;
        context.Response.StatusCode = read == body.Length ? StatusCodes.Status200OK : StatusCodes.Status400BadRequest;
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers.XContentTypeOptions = "nosniff";
        context.Response.ContentLength = HttpOnlyAnswer.Length;
        await context.Response.Body.WriteAsync(HttpOnlyAnswer);
    }

    private static JsonNode? Ms(double value) => double.IsFinite(value) ? JsonValue.Create(Math.Round(value, 2)) : null;

    /// <summary>Captures <paramref name="count"/> webhooks through <see cref="IInboxCapture"/> from <paramref name="callers"/> loops, each awaiting its answer.</summary>
    private static async Task<(TimeSpan Elapsed, int NotStored)> InProcessAsync(IInboxCapture capture, string tag, int count, int callers)
    {
        var headers = new Dictionary<string, string> { ["Content-Type"] = "application/json", ["X-Webhook-Secret"] = Secret };
        var bodies = Enumerable.Range(0, count).Select(i => Body(tag, i)).ToArray(); // built before the clock starts
        var next = -1;
        var notStored = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var result = await capture.CaptureAsync("zapi", Instance, bodies[i], headers);
                if (result.Status != CaptureStatus.Stored) Interlocked.Increment(ref notStored);
            }
        })));
        return (clock.Elapsed, notStored);
    }

    /// <summary>The peer line's name (<see cref="Peers.Name"/>) of <c>pgbench-capture.sh</c>.</summary>
    public const string PgbenchPeer = "pgbench-single-row-insert";

    /// <summary>The issue's target: capture at least this many times the pgbench single-row insert ceiling.</summary>
    public const double PgbenchTarget = 1.5;

    /// <summary>
    /// Runs <c>pgbench-capture.sh</c> from the anchors folder (<see cref="Peers.FindAnchors"/>) --runs times against the server
    /// of this invocation (DATABASE_URL from <see cref="PostgreSqlBenchStorage.EnvironmentVariable"/>); prints each line and
    /// the median line and returns the median, or null (with the reason on stderr) when it cannot run.
    /// </summary>
    public static async Task<JsonObject?> RunPgbenchAsync(BenchOptions options, CancellationToken cancellationToken)
    {
        var anchors = Peers.FindAnchors(out var reason);
        var script = anchors is null ? null : Path.Combine(anchors, "pgbench-capture.sh");
        if (script is null || !File.Exists(script))
        {
            await Console.Error.WriteLineAsync($"[bench] pgbench ceiling skipped: {(script is null ? reason : script + " does not exist")}.");
            return null;
        }

        var url = PostgresCluster.ToDatabaseUrl(Environment.GetEnvironmentVariable(PostgreSqlBenchStorage.EnvironmentVariable)!);
        var runs = new List<JsonObject>();
        for (var run = 1; run <= options.Runs; run++)
        {
            await Console.Error.WriteLineAsync($"[bench] pgbench ceiling run {run} of {options.Runs}: bash {script} (DATABASE_URL = the same server)");
            var (exitCode, lines) = await Peers.RunScriptAsync(script, [], url, cancellationToken);
            var line = lines.FirstOrDefault(l => !l.ContainsKey("error") && Peers.Name(l) == PgbenchPeer);
            if (exitCode != 0 || line is null) await Console.Error.WriteLineAsync($"[bench] {Path.GetFileName(script)} run {run} failed (exit code {exitCode}).");
            else runs.Add(line);
        }

        if (runs.Count == 0) return null;
        var median = Peers.Median(runs);
        await Console.Out.WriteLineAsync(median.ToJsonString(BenchResult.Output));
        return median;
    }

    /// <summary>The ratio line ours/pgbench: HTTP capture and in-process capture against the database's single-row insert ceiling.</summary>
    public static JsonObject PgbenchRatio(JsonObject? capture, JsonObject? pgbench)
    {
        var ceiling = Number(pgbench, "inserts_per_s");
        return new JsonObject
        {
            ["ratio"] = "inbox-reliability-capture/" + PgbenchPeer,
            ["storage"] = capture?["storage"]?.DeepClone(),
            ["pgbench_inserts_per_s"] = Json(ceiling),
            ["capture_per_s"] = Ratio(Number(capture, "capture_per_s"), ceiling),
            ["capture_inproc_per_s"] = Ratio(Number(capture, "capture_inproc_per_s"), ceiling),
            ["enqueue_only_capture_per_s"] = Ratio(Number(capture, "enqueue_only_capture_per_s"), ceiling),
            ["enqueue_only_capture_inproc_per_s"] = Ratio(Number(capture, "enqueue_only_capture_inproc_per_s"), ceiling),
            ["http_only_per_s"] = Ratio(Number(capture, "http_only_per_s"), ceiling),
        };
    }

    /// <summary>The target entry "capture >= 1.5 x the pgbench single-row insert ceiling", for the targets line.</summary>
    public static JsonObject PgbenchTargetEntry(JsonObject? capture, JsonObject? pgbench)
    {
        var ceiling = Number(pgbench, "inserts_per_s");
        var http = Number(capture, "capture_per_s");
        var inProcess = Number(capture, "capture_inproc_per_s");
        var entry = new JsonObject
        {
            ["target"] = ">= " + PgbenchTarget.ToString(CultureInfo.InvariantCulture) + " x the pgbench single-row insert ceiling (higher is better)",
            ["peer"] = PgbenchPeer,
            ["peer_value"] = Json(ceiling),
            ["ours_http"] = Json(http),
            ["ratio_http"] = Ratio(http, ceiling),
            ["ours_inproc"] = Json(inProcess),
            ["ratio_inproc"] = Ratio(inProcess, ceiling),
            ["met"] = ceiling is > 0 && http is not null && http / ceiling >= PgbenchTarget,
            ["met_inproc"] = ceiling is > 0 && inProcess is not null && inProcess / ceiling >= PgbenchTarget,
            ["ratio_http_enqueue_only"] = Ratio(Number(capture, "enqueue_only_capture_per_s"), ceiling),
            ["ratio_inproc_enqueue_only"] = Ratio(Number(capture, "enqueue_only_capture_inproc_per_s"), ceiling),
            ["ratio_http_only_floor"] = Ratio(Number(capture, "http_only_per_s"), ceiling),
        };
        if (ceiling is null) entry["note"] = "pgbench not measured";
        return entry;
    }

    private static double? Number(JsonObject? line, string field) =>
        line?[field] is JsonValue v && v.TryGetValue<double>(out var d) && double.IsFinite(d) ? d : null;

    private static JsonNode? Json(double? value) => value is { } v && double.IsFinite(v) ? JsonValue.Create(v) : null;

    private static JsonNode? Ratio(double? ours, double? peer) =>
        ours is { } o && peer is { } p && p > 0 ? JsonValue.Create(Math.Round(o / p, 3)) : null;

    private sealed record Outcome(int Non2xx, TimeSpan LastSuccess, ConcurrentDictionary<string, int> Statuses);

    private sealed record OpenOutcome(int Non2xx, List<double> AckMs, double AchievedPerS, int Late, ConcurrentDictionary<string, int> Statuses, double MachineBusyPercent);

    /// <summary>Posts <paramref name="count"/> webhooks from <paramref name="clients"/> loops, each waiting for its answer.</summary>
    private static async Task<Outcome> ClosedLoopAsync(HttpClient client, Uri url, string tag, int count, int clients)
    {
        var next = -1;
        var non2xx = 0;
        long lastSuccess = 0;
        var statuses = new ConcurrentDictionary<string, int>();
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var status = await PostAsync(client, url, tag, i);
                if (status is >= 200 and < 300)
                {
                    var now = Stopwatch.GetTimestamp();
                    long seen;
                    while ((seen = Interlocked.Read(ref lastSuccess)) < now && Interlocked.CompareExchange(ref lastSuccess, now, seen) != seen)
                    {
                    }
                }
                else
                {
                    Interlocked.Increment(ref non2xx);
                    statuses.AddOrUpdate(status.ToString(CultureInfo.InvariantCulture), 1, (_, n) => n + 1);
                }
            }
        })));
        return new Outcome(non2xx, Stopwatch.GetElapsedTime(start, Math.Max(start, lastSuccess)), statuses);
    }

    /// <summary>
    /// Fires one webhook every 1/<paramref name="perSecond"/> s on average from a dedicated timer thread, without waiting for
    /// answers (at most <see cref="MaxInFlight"/> in flight; a send that had to wait for a slot counts as late).
    /// </summary>
    private static async Task<OpenOutcome> OpenLoopAsync(HttpClient client, Uri url, string tag, int count, int perSecond)
    {
        var ack = new double[count];
        var ok = new bool[count];
        var non2xx = 0;
        var late = 0;
        var statuses = new ConcurrentDictionary<string, int>();
        using var slots = new SemaphoreSlim(MaxInFlight);
        var tasks = new Task[count];
        var ticksPerSend = (double)Stopwatch.Frequency / perSecond;

        async Task SendAsync(int i)
        {
            try
            {
                var sent = Stopwatch.GetTimestamp();
                var status = await PostAsync(client, url, tag, i);
                ack[i] = Stopwatch.GetElapsedTime(sent).TotalMilliseconds;
                if (status is >= 200 and < 300)
                {
                    ok[i] = true;
                }
                else
                {
                    Interlocked.Increment(ref non2xx);
                    statuses.AddOrUpdate(status.ToString(CultureInfo.InvariantCulture), 1, (_, n) => n + 1);
                }
            }
            finally
            {
                slots.Release();
            }
        }

        var cpu = MachineCpu.Read();
        var start = Stopwatch.GetTimestamp();
        var timer = new Thread(() =>
        {
            var i = 0;
            while (i < count)
            {
                var due = Math.Min(count, (int)((Stopwatch.GetTimestamp() - start) / ticksPerSend) + 1);
                for (; i < due; i++)
                {
                    if (!slots.Wait(0))
                    {
                        Interlocked.Increment(ref late);
                        slots.Wait();
                    }

                    var n = i;
                    tasks[n] = Task.Run(() => SendAsync(n));
                }

                // Linux sleeps about 1 ms: 2 sends per wake-up on average at 2,000/s.
                Thread.Sleep(1);
            }
        }) { IsBackground = true, Name = "bench-open-loop", Priority = ThreadPriority.AboveNormal };
        timer.Start();
        await Task.Run(timer.Join);
        var scheduled = Stopwatch.GetElapsedTime(start).TotalSeconds;
        await Task.WhenAll(tasks);
        var busy = MachineCpu.BusyPercent(cpu, MachineCpu.Read());
        var samples = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            if (ok[i]) samples.Add(ack[i]);
        }

        return new OpenOutcome(non2xx, samples, count / scheduled, late, statuses, busy);
    }

    private static async Task<int> PostAsync(HttpClient client, Uri url, string tag, int i)
    {
        using var content = new ByteArrayContent(Body(tag, i));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        try
        {
            using var response = await client.PostAsync(url, content);
            await response.Content.LoadIntoBufferAsync();
            return (int)response.StatusCode;
        }
        catch (HttpRequestException ex)
        {
            return ex.StatusCode is { } code ? (int)code : 0;
        }
        catch (TaskCanceledException)
        {
            return (int)HttpStatusCode.RequestTimeout;
        }
    }

    private static readonly string Filler = new('x', 560);

    /// <summary>A Z-API text message (ReceivedCallback) of about 1 KB; its text carries the tag and the send timestamp.</summary>
    private static byte[] Body(string tag, int i)
    {
        var chat = i % Chats;
        var inv = CultureInfo.InvariantCulture;
        var json = string.Create(inv, $$$"""
            {"isStatusReply":false,"senderLid":"81{{{chat:D11}}}@lid","connectedPhone":"5511999990000","waitingMessage":false,"isEdit":false,"isGroup":false,"isNewsletter":false,"instanceId":"3E0BENCHINSTANCE0000000000000001","messageId":"BENCH{{{tag}}}{{{i:D10}}}","phone":"55119{{{chat:D8}}}","fromMe":false,"momment":{{{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}}},"status":"RECEIVED","chatName":"Chat {{{chat}}}","senderPhoto":null,"senderName":"Sender {{{chat}}}","participantPhone":null,"participantLid":null,"broadcast":false,"messageExpirationSeconds":0,"forwarded":false,"type":"ReceivedCallback","text":{"message":"{{{EndToEndRecorder.Prefix}}}{{{tag}}}|{{{Stopwatch.GetTimestamp()}}}|{{{Filler}}}"}}
            """);
        return Encoding.UTF8.GetBytes(json);
    }
}

/// <summary>Collects, per tag, the send-to-handler latency of each event's first delivery.</summary>
public sealed class EndToEndRecorder
{
    public const string Prefix = "bench|";

    private readonly ConcurrentDictionary<string, ConcurrentBag<double>> _samples = new();

    public void Record(string text, int attempt)
    {
        var now = Stopwatch.GetTimestamp();
        if (attempt != 1 || !text.StartsWith(Prefix, StringComparison.Ordinal)) return;
        var parts = text.Split('|', 4);
        if (parts.Length < 3 || !long.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var sent)) return;
        _samples.GetOrAdd(parts[1], _ => []).Add(Stopwatch.GetElapsedTime(sent, now).TotalMilliseconds);
    }

    public int Count(string tag) => _samples.TryGetValue(tag, out var bag) ? bag.Count : 0;

    public List<double> Samples(string tag) => _samples.TryGetValue(tag, out var bag) ? [.. bag] : [];

    /// <summary>Waits until <paramref name="count"/> events of <paramref name="tag"/> were seen; false on timeout.</summary>
    public async Task<bool> WaitAsync(string tag, int count, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(5));
        while (Count(tag) < count)
        {
            if (clock.Elapsed > timeout) return false;
            await poll.WaitForNextTickAsync();
        }

        return true;
    }
}

/// <summary>The host's event handler: records end-to-end latency from the timestamp in the message text.</summary>
public sealed class EndToEndHandler(EndToEndRecorder recorder) : IInboxEventHandler
{
    public Task HandleAsync(InboxEventContext context, CancellationToken cancellationToken)
    {
        if (context.Event.Text is { } text) recorder.Record(text, context.Attempt);
        return Task.CompletedTask;
    }
}
