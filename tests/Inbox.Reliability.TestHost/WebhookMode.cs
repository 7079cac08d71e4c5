using Inbox.Reliability.Capture;
using Inbox.Reliability.Dispatch;
using Inbox.Reliability.Jobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Inbox.Reliability.TestHost;

/// <summary>
/// The webhooks mode: a real Kestrel app (the address from --urls) with the webhook pipeline on the chosen storage,
/// Z-API registered with the secret <see cref="ZApiSecret"/>, <c>MapInboxWebhooks("/webhooks")</c>, and an event
/// handler that appends "externalId chatId" to the handler log per delivery. Prints READY once listening.
/// </summary>
public static class WebhookMode
{
    public const string ZApiSecret = "crash-secret";

    public static async Task<int> RunAsync(TestHostArguments arguments)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, EnvironmentName = "Production" });
        builder.WebHost.UseUrls(arguments.Urls);
        builder.Logging.ClearProviders();
        // stdout carries only READY; logs go to stderr.
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        builder.Services.AddSingleton(arguments);
        builder.Services.AddSingleton(_ => new HandlerLog(arguments.LogPath));

        var inbox = builder.Services.AddInboxReliability(o =>
        {
            if (arguments.Worker is not null) o.WorkerName = arguments.Worker;
            o.LeaseReaperInterval = arguments.ReaperInterval;
            o.ShutdownGracePeriod = TimeSpan.FromSeconds(5);
        });
        switch (arguments.Storage)
        {
            case "sqlite":
                inbox.UseSqlite(arguments.Connection);
                break;
            case "postgres":
                inbox.UsePostgreSql(arguments.Connection, o => o.Schema = arguments.Schema);
                break;
        }

        // A short lease so a restarted host takes over the killed one's ingest and dispatch jobs quickly.
        inbox.AddZApi(o => o.WebhookSecret = ZApiSecret).AddEventHandler<LogEventHandler>()
             .AddWebhookPipeline(o =>
             {
                 o.LeaseDuration = arguments.Lease;
                 o.Media.MaxBytes = arguments.MediaMaxMegabytes * 1024L * 1024;
                 o.Media.DispatchWait = arguments.MediaWait;
             });
        if (arguments.MediaRoot is not null) inbox.UseFileSystemMediaStore(arguments.MediaRoot);

        await using var app = builder.Build();
        app.MapInboxWebhooks("/webhooks");
        try
        {
            await app.StartAsync();
        }
        catch (Exception ex)
        {
            await Console.Error.WriteLineAsync("The host failed to start: " + ex);
            return 2;
        }

        // The parent stops this host by closing stdin (or with SIGTERM, handled by the console lifetime).
        _ = Task.Run(async () =>
        {
            while (await Console.In.ReadLineAsync() is not null)
            {
                // Input is ignored; only its end matters.
            }

            app.Lifetime.StopApplication();
        });

        Console.Out.WriteLine("READY");
        Console.Out.Flush();
        await app.WaitForShutdownAsync();
        return 0;
    }
}

/// <summary>
/// Appends "externalId chatId" (chat "-" when none) to the handler log per delivery, flushed before returning; for an
/// event with media, " status key" follows ("-" for no key), and " update" for a media update.
/// </summary>
public sealed class LogEventHandler(HandlerLog log) : IInboxEventHandler
{
    public Task HandleAsync(InboxEventContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var line = context.Event.ExternalId + " " + (context.Event.ChatId ?? "-");
        if (context.Media.Status != Storage.MediaStatus.None) line += " " + context.Media.Status + " " + (context.Media.Key ?? "-") + (context.IsMediaUpdate ? " update" : "");
        log.Append(line);
        return Task.CompletedTask;
    }
}
