using Inbox.Reliability;
using Inbox.Reliability.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
{
    Console.WriteLine(TestHostArguments.Usage);
    return args.Length == 0 ? 1 : 0;
}

TestHostArguments arguments;
try
{
    arguments = TestHostArguments.Parse(args);
}
catch (ArgumentException ex)
{
    await Console.Error.WriteLineAsync(ex.Message + Environment.NewLine + Environment.NewLine + TestHostArguments.Usage);
    return 1;
}

if (arguments.Mode == "webhooks") return await WebhookMode.RunAsync(arguments);

var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
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

inbox.AddJobHandler<LogWorkloadHandler>(arguments.Queue, o =>
{
    o.Concurrency = arguments.Concurrency;
    o.LeaseDuration = arguments.Lease;
    o.HeartbeatInterval = arguments.Heartbeat;
});

using var host = builder.Build();
var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();

try
{
    await host.StartAsync();
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

    lifetime.StopApplication();
});

Console.Out.WriteLine("READY");
Console.Out.Flush();
await host.WaitForShutdownAsync();
return 0;
