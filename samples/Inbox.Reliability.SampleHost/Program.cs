// Inbox.Reliability sample host: an ASP.NET Core app on SQLite.
//
// The first part is what a host adds to use the library: storage, one handler per job queue, the WhatsApp providers,
// media downloads into a folder, an event handler, the webhook endpoint and the media links endpoint. Copy it.
// The rest is the demo, in three modes:
//   (no option)      the job demo: enqueues a workload in which some jobs fail on purpose, shows the progress, and checks
//                    at the end that nothing was lost, every chat ran in order and the poison jobs were dead-lettered;
//                    the webhook endpoint is served meanwhile. --keep-running keeps serving after the summary.
//   --serve          only serves the webhook endpoint, until Ctrl+C.
//   --replay         posts every payload in Fixtures/ to the endpoint over HTTP, as the providers would (and again, and
//                    one forged), waits for the pipeline and prints what was captured, deduplicated and dispatched, and
//                    what became of each media (without internet, the fixtures' media URLs are unreachable: they fail).
//
//   dotnet run --project samples/Inbox.Reliability.SampleHost [-- [--jobs N] [--keep-running] | --serve | --replay] [--urls URL]

using Inbox.Reliability;
using Inbox.Reliability.Capture;
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

// Secrets from the "Inbox" section of appsettings.json: DEMO values, replace them (environment, user secrets, a vault).
var webhooks = WebhookSettings.Read(builder.Configuration);

// Where to listen: --urls or ASPNETCORE_URLS when given, else 127.0.0.1:5080. --replay talks to itself on a free port.
// The media links name this address (or Inbox:Media:LinkBaseUrl, for a host behind a proxy), so it is settled now.
const string MediaPath = "/media";
var address = HostAddress.Resolve(options.Mode == SampleMode.Replay, builder.Configuration, MediaPath, webhooks.MediaLinkBaseUrl);
builder.WebHost.UseUrls(address.Urls);

// Logging. The library logs every failed attempt that will be retried as a Warning (event id 1001) and every dead letter
// as an Error (1002), under "Inbox.Reliability.Jobs.<queue>". The job demo fails hundreds of attempts on purpose, so its
// queues keep only errors on screen (the dead letters); everything else keeps warnings, such as a refused webhook
// signature (2001), a media download that will be retried (3002) or failed for good (3003). The media queue's own retry
// warnings (1001, with the exception's stack) say the same as 3002, so that queue keeps only errors too.
// appsettings.json keeps Microsoft.AspNetCore at Warning: its request logging would write the URL with the ?secret= of
// Z-API, Evolution and W-API.
builder.Logging.SetMinimumLevel(LogLevel.Warning);
foreach (var queueName in Queues.All) builder.Logging.AddFilter("Inbox.Reliability.Jobs." + queueName, LogLevel.Error);
builder.Logging.AddFilter("Inbox.Reliability.Jobs." + InboxQueues.Media, LogLevel.Error);
builder.Logging.AddSimpleConsole(o => o.SingleLine = true); // one line per entry, between the progress lines

// The demo's database and, next to it, the media folder; --replay starts from empty ones each run, so reruns give the
// same counts (and a new event never finds an earlier run's file under its key).
var (database, mediaFolder) = options.Mode == SampleMode.Replay ? FreshReplayData() : ("data/sample.db", "data/media");

// Demo only: the event counter --replay reads; a fresh run id, so the job demo counts this run's jobs only, and its
// per-chat order check.
builder.Services.AddSingleton<DispatchedEvents>();
builder.Services.AddSingleton(new ChatOrderChecker(Guid.NewGuid().ToString("N")[..8]));

// ---- Inbox.Reliability: the part to copy ---------------------------------------------------------------
var inbox = builder.Services.AddInboxReliability()
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
        o.AccessToken = webhooks.MetaAccessToken;  // downloads media (null: Meta media fail at once, visibly)
    })
    .AddZApi(o => o.WebhookSecret = webhooks.ZApiWebhookSecret)                 // ?secret=... in the webhook URL; media links need no credentials
    .AddEvolutionApi(o =>
    {
        o.WebhookSecret = webhooks.EvolutionWebhookSecret;  // ?secret=... in the webhook URL
        o.BaseUrl = webhooks.EvolutionBaseUrl;              // media without a mediaUrl (Evolution's S3 off) are asked of Evolution,
        o.ApiKey = webhooks.EvolutionApiKey;                // with this apikey
    })
    .AddWaha(o =>
    {
        o.HmacKey = webhooks.WahaHmacKey;   // verifies X-Webhook-Hmac (SHA-512)
        o.BaseUrl = webhooks.WahaBaseUrl;   // where this host reaches WAHA (WAHA often reports http://localhost:3000 in media.url)
        o.ApiKey = webhooks.WahaApiKey;     // X-Api-Key for media downloads
    })
    .AddWApi(o =>
    {
        o.WebhookSecret = webhooks.WApiWebhookSecret;  // ?secret=... in the webhook URL
        o.ApiToken = webhooks.WApiApiToken;            // downloads media (null: W-API media fail at once, visibly)
    })

    // Media: each inbound photo, voice note, video or document is streamed from its provider into a folder next to the
    // database (atomic writes, SHA-256 computed on the way). The handler gets its state in context.Media and a fresh
    // signed link from context.GetMediaUrlAsync, served by MapInboxMedia below; LinkBaseUrl is where that is reachable.
    .UseFileSystemMediaStore(mediaFolder, o => o.LinkBaseUrl = address.LinkBaseUrl)
    .AddWebhookPipeline(o =>
    {
        o.Media.MaxBytes = 100L * 1024 * 1024;            // a larger media fails visibly, nothing stored (default 100 MB)
        o.Media.DispatchWait = TimeSpan.FromSeconds(30);  // a chat waits this long for a media, then its event goes with a placeholder
        o.Media.RedeliverLateMedia = true;                // ...and is delivered again (IsMediaUpdate) once the media ends
    })
    .AddEventHandler<PrintEventsHandler>();

// Demo only: --replay plays fixtures whose media URLs are fake, so on a machine without internet every download fails
// (Meta and W-API at once, without a token; Z-API, Evolution and WAHA with connection errors, which are retried). Two
// attempts, the retry after ~3 s, and a chat that waits 2 s: the replay ends within seconds and shows both ways a handler
// learns about a media: with the event (failed at once), or as a placeholder first and a media update after.
if (options.Mode == SampleMode.Replay)
{
    inbox.AddWebhookPipeline(o =>
    {
        o.Media.MaxAttempts = 2;                          // default 10 (about 17 minutes of retries)
        o.Media.Backoff.Base = TimeSpan.FromSeconds(3);   // default 1 s, doubling; longer than DispatchWait on purpose
        o.Media.DispatchWait = TimeSpan.FromSeconds(2);
    });
}

await using var app = builder.Build();
app.MapInboxWebhooks(WebhookSettings.Prefix);
app.MapInboxMedia(MediaPath);   // GET /media/{key}?exp=…&sig=…: the signed links of the file-system media store
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
            webhooks.PrintMedia(mediaFolder, address.LinkBaseUrl);
            Console.WriteLine();
            Console.WriteLine("Serving webhooks (--serve); each event is printed as it is dispatched. Press Ctrl+C to stop.");
            await app.WaitForShutdownAsync();
            return 0;

        case SampleMode.Replay:
            Console.WriteLine($"Storage: {Path.GetFullPath(database)} (new for this run)");
            webhooks.PrintMedia(mediaFolder, address.LinkBaseUrl);
            var replay = new WebhookReplay(
                new Uri(addresses.First()), webhooks, app.Services.GetRequiredService<IInboxStore>(), app.Services.GetRequiredService<IJobQueue>(),
                app.Services.GetServices<IWebhookProvider>(), app.Services.GetRequiredService<DispatchedEvents>());
            exitCode = await replay.RunAsync(stopping);
            break;

        default:
            webhooks.PrintUrls(addresses);
            webhooks.PrintMedia(mediaFolder, address.LinkBaseUrl);
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

// data/replay.db and data/replay-media, emptied: the file, its WAL and the media folder, so every --replay starts from
// nothing (event ids start at 1 again, and a media key names its event id).
static (string Database, string MediaFolder) FreshReplayData()
{
    const string path = "data/replay.db", media = "data/replay-media";
    if (Directory.Exists("data"))
    {
        foreach (var suffix in new[] { "", "-wal", "-shm", "-journal" }) File.Delete(path + suffix);
        if (Directory.Exists(media)) Directory.Delete(media, recursive: true);
    }

    return (path, media);
}
