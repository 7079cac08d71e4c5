// Inbox.Reliability sample host: an ASP.NET Core app on SQLite.
//
// The first part is what a host adds to use the library: storage, one handler per job queue, the WhatsApp providers,
// an event handler and the webhook endpoint. Copy it.
// The rest is the demo, in three modes:
//   (no option)      the job demo: enqueues a workload in which some jobs fail on purpose, shows the progress, and checks
//                    at the end that nothing was lost, every chat ran in order and the poison jobs were dead-lettered;
//                    the webhook endpoint is served meanwhile. --keep-running keeps serving after the summary.
//   --serve          only serves the webhook endpoint, until Ctrl+C.
//   --replay         posts every payload in Fixtures/ to the endpoint over HTTP, as the providers would (and again, and
//                    one forged), waits for the pipeline and prints what was captured, deduplicated and dispatched.
//
//   dotnet run --project samples/Inbox.Reliability.SampleHost [-- [--jobs N] [--keep-running] | --serve | --replay] [--urls URL]

using Inbox.Reliability;
using Inbox.Reliability.Events;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.SampleHost;
using Inbox.Reliability.SampleHost.Demo;
using Inbox.Reliability.SampleHost.Handlers;
using Inbox.Reliability.SampleHost.Webhooks;
using Inbox.Reliability.Storage;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

var options = DemoOptions.Parse(args);
if (options is null) return 2;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = [.. options.HostArgs],
    // appsettings.json is read from next to the binary, so the sample runs from any folder; ./data is in the current one.
    ContentRootPath = AppContext.BaseDirectory,
});

// Where to listen: --urls or ASPNETCORE_URLS when given, else 127.0.0.1:5080. --replay talks to itself on a free port.
if (options.Mode == SampleMode.Replay) builder.WebHost.UseUrls("http://127.0.0.1:0");
else if (string.IsNullOrEmpty(builder.Configuration["urls"])) builder.WebHost.UseUrls("http://127.0.0.1:5080");

// Logging. The library logs every failed attempt that will be retried as a Warning (event id 1001) and every dead letter
// as an Error (1002), under "Inbox.Reliability.Jobs.<queue>". The job demo fails hundreds of attempts on purpose, so its
// queues keep only errors on screen (the dead letters); everything else keeps warnings, such as a refused webhook
// signature (2001). appsettings.json keeps Microsoft.AspNetCore at Warning: its request logging would write the URL
// with the ?secret= of Z-API, Evolution and W-API.
builder.Logging.SetMinimumLevel(LogLevel.Warning);
foreach (var queueName in Queues.All) builder.Logging.AddFilter("Inbox.Reliability.Jobs." + queueName, LogLevel.Error);
builder.Logging.AddSimpleConsole(o => o.SingleLine = true); // one line per entry, between the progress lines

// The demo's database; --replay starts from an empty one each run, so reruns give the same counts.
var database = options.Mode == SampleMode.Replay ? FreshReplayDatabase() : "data/sample.db";

// Secrets from the "Inbox" section of appsettings.json: DEMO values, replace them (environment, user secrets, a vault).
var webhooks = WebhookSettings.Read(builder.Configuration);

// Demo only: the event counter --replay reads; a fresh run id, so the job demo counts this run's jobs only, and its
// per-chat order check.
builder.Services.AddSingleton<DispatchedEvents>();
builder.Services.AddSingleton(new ChatOrderChecker(Guid.NewGuid().ToString("N")[..8]));

// ---- Inbox.Reliability: the part to copy ---------------------------------------------------------------
builder.Services.AddInboxReliability()
    // A SQLite file relative to the current directory; the folder is created when missing.
    .UseSqlite($"Data Source={database}")

    // Inbound messages, keyed by chat id: one chat's messages run one at a time, in order; chats run in parallel.
    .AddJobHandler<ChatMessageHandler>(Queues.ChatMessages, o =>
    {
        o.Concurrency = 16;
        o.MaxAttempts = 3;
        o.Backoff.Base = TimeSpan.FromMilliseconds(200); // retries after ~200 ms, ~400 ms (default: 1 s, doubling)
    })

    // Receipts, unkeyed: they run in parallel, a failed one retries with backoff.
    .AddJobHandler<ReceiptHandler>(Queues.Receipts, o =>
    {
        o.Concurrency = 8;
        o.MaxAttempts = 3;
        o.Backoff.Base = TimeSpan.FromMilliseconds(200);
    })

    // Media downloads: a job that throws FatalJobException, or fails MaxAttempts times, is dead-lettered.
    .AddJobHandler<MediaDownloadHandler>(Queues.MediaDownloads, o =>
    {
        o.Concurrency = 4;
        o.MaxAttempts = 3;
        o.Backoff.Base = TimeSpan.FromMilliseconds(200);
    })

    // Webhooks from the five providers: POST /webhooks/{provider}/{instance}, stored before the 200, then parsed into
    // events, deduplicated, and handed to the event handlers in per-chat order.
    .AddMetaCloudApi(o =>
    {
        o.AppSecret = webhooks.MetaAppSecret;      // verifies X-Hub-Signature-256
        o.VerifyToken = webhooks.MetaVerifyToken;  // answers the GET handshake
    })
    .AddZApi(o => o.WebhookSecret = webhooks.ZApiWebhookSecret)                 // ?secret=... in the webhook URL
    .AddEvolutionApi(o => o.WebhookSecret = webhooks.EvolutionWebhookSecret)    // ?secret=... in the webhook URL
    .AddWaha(o => o.HmacKey = webhooks.WahaHmacKey)                             // verifies X-Webhook-Hmac (SHA-512)
    .AddWApi(o => o.WebhookSecret = webhooks.WApiWebhookSecret)                 // ?secret=... in the webhook URL
    .AddEventHandler<PrintEventsHandler>();

await using var app = builder.Build();
app.MapInboxWebhooks(WebhookSettings.Prefix);
// ---------------------------------------------------------------------------------------------------------

// Starting the app validates the configuration, migrates the SQLite file, starts one worker per queue and Kestrel.
await app.StartAsync();
var stopping = app.Lifetime.ApplicationStopping; // Ctrl+C
var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];

int exitCode;
try
{
    switch (options.Mode)
    {
        case SampleMode.Serve:
            Console.WriteLine($"Storage: {Path.GetFullPath(database)}");
            webhooks.PrintUrls(addresses);
            Console.WriteLine();
            Console.WriteLine("Serving webhooks (--serve); each event is printed as it is dispatched. Press Ctrl+C to stop.");
            await app.WaitForShutdownAsync();
            return 0;

        case SampleMode.Replay:
            Console.WriteLine($"Storage: {Path.GetFullPath(database)} (new for this run)");
            var replay = new WebhookReplay(
                new Uri(addresses.First()), webhooks, app.Services.GetRequiredService<IInboxStore>(), app.Services.GetRequiredService<IJobQueue>(),
                app.Services.GetServices<IWebhookProvider>(), app.Services.GetRequiredService<DispatchedEvents>());
            exitCode = await replay.RunAsync(stopping);
            break;

        default:
            webhooks.PrintUrls(addresses);
            Console.WriteLine();
            exitCode = await JobDemo.RunAsync(app.Services, options, stopping);
            if (options.KeepRunning)
            {
                Console.WriteLine();
                webhooks.PrintUrls(addresses);
                Console.WriteLine("The host keeps running (--keep-running): the workers wait for new jobs, the endpoint for webhooks. Press Ctrl+C to stop.");
                await app.WaitForShutdownAsync();
                return exitCode;
            }

            break;
    }
}
catch (OperationCanceledException) when (stopping.IsCancellationRequested)
{
    Console.WriteLine($"Stopped before the run finished; what it stored stays in {database}.");
    exitCode = 130;
}

// Stopping lets running handlers finish (ShutdownGracePeriod), then releases the rest back to pending.
await app.StopAsync();
return exitCode;

// data/replay.db, emptied: the file and its WAL, so every --replay starts from nothing.
static string FreshReplayDatabase()
{
    const string path = "data/replay.db";
    if (Directory.Exists("data"))
    {
        foreach (var suffix in new[] { "", "-wal", "-shm", "-journal" }) File.Delete(path + suffix);
    }

    return path;
}
