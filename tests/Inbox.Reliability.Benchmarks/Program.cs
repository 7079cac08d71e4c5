using System.Runtime.InteropServices;
using Inbox.Reliability.Benchmarks;
using Inbox.Reliability.Testing;

// The parent runs each run of each mode in a fresh child process (this executable with --child), so the peak
// RSS it reports belongs to that run alone, then prints the medians. A child runs one mode once, or one measure.
BenchOptions options;
var startsServer = false;
try
{
    options = BenchOptions.Parse(args);
    // The parent of a PostgreSQL run without INBOX_BENCH_POSTGRES starts its own server below.
    // --capture-only needs no server when the storage has no webhook pipeline storage (nothing to measure).
    var captureOnlyUnavailable = (options.CaptureOnly || options.Measure == BenchMeasures.Capture) && !CaptureMeasure.IsAvailable(options.Storage);
    startsServer = !options.Child && options.Measure is null && options.IsPostgres && !PostgreSqlBenchStorage.IsConfigured &&
        !captureOnlyUnavailable;
    if (!startsServer && !captureOnlyUnavailable) BenchStorages.Check(options.Storage);
}
catch (Exception ex) when (ex is ArgumentException or NotSupportedException)
{
    await Console.Error.WriteLineAsync(ex.Message);
    if (ex is ArgumentException) await Console.Error.WriteLineAsync(BenchOptions.UsageText);
    return 2;
}

if (options.Media) return await MediaMeasure.RunAsync(options);

if (options.Measure == BenchMeasures.Capture && !CaptureMeasure.IsAvailable(options.Storage))
{
    await Console.Out.WriteLineAsync(CaptureMeasure.NotAvailable(options.Storage).ToJsonString(BenchResult.Output));
    return 0;
}

if (options.Measure is not null)
{
    await using var storage = BenchStorages.Create(options.Storage);
    var measured = options.Measure switch
    {
        BenchMeasures.Claim => await ClaimMeasure.RunAsync(options, storage),
        BenchMeasures.Capture => await CaptureMeasure.RunAsync(options, storage),
        _ => await IdleMeasure.RunAsync(options, storage),
    };
    await Console.Out.WriteLineAsync(measured.ToJsonString(BenchResult.Output));
    return 0;
}

if (options.Child)
{
    // Warm-up on a throwaway database: a host serving traffic runs jitted code, so the measured run should too. The
    // runtime compiles the optimized code of what the warm-up made hot in the background, after a delay that restarts
    // whenever new code runs, and with profile-guided optimization in two steps (instrumented, then optimized): wait
    // until it is done, then run the warm-up again on that code, until a round compiles less than a tenth of what the
    // first did (a few hundred methods are compiled again by every new host). Two to eight rounds, usually four;
    // fewer left the measured burn-down compiling the optimized code of its own hot path, at up to twice the CPU.
    if (options.Warmup)
    {
        var first = 0;
        for (var round = 1; round <= 8; round++)
        {
            var before = System.Runtime.JitInfo.GetCompiledMethodCount();
            await using var warmupStorage = BenchStorages.Create(options.Storage);
            await BenchRun.RunAsync(options.ForWarmup(), options.Modes[0], warmupStorage);
            await Jit.SettledAsync();
            var compiled = (int)(System.Runtime.JitInfo.GetCompiledMethodCount() - before);
            await Console.Error.WriteLineAsync($"[bench] warm-up round {round}: {compiled} methods compiled");
            if (round == 1) first = compiled;
            else if (compiled < first / 10) break;
        }
    }

    await using var storage = BenchStorages.Create(options.Storage);
    var result = await BenchRun.RunAsync(options, options.Modes[0], storage);
    await Console.Out.WriteLineAsync(result.ToJson());
    return 0;
}

// The parent. Ctrl+C (or SIGTERM, SIGHUP) stops the running child or script and then the server this process started; a
// second Ctrl+C exits at once, after stopping that server immediately (pg_ctl stop -m immediate).
using var cancel = new CancellationTokenSource();
PostgresCluster? cluster = null;
void Cancel(string signal)
{
    Console.Error.WriteLine($"[bench] {signal}: stopping the running step and the server this run started (Ctrl+C again to exit at once)");
    cancel.Cancel();
}

Console.CancelKeyPress += (_, e) =>
{
    if (cancel.IsCancellationRequested)
    {
        cluster?.StopImmediately();
        return;
    }

    e.Cancel = true;
    Cancel("Ctrl+C");
};
// Without a handler SIGTERM kills the process on the spot (no ProcessExit): the throwaway server would be left running.
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    if (!cancel.IsCancellationRequested) Cancel("SIGTERM");
});
using var onHangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
{
    context.Cancel = true;
    if (!cancel.IsCancellationRequested) Cancel("SIGHUP");
});

try
{
    if (startsServer)
    {
        cluster = new PostgresCluster("inbox_bench", PostgreSqlBenchStorage.EnvironmentVariable);
        await cluster.StartAsync();
        // The children (and the peers, through DATABASE_URL) all use this one server.
        Environment.SetEnvironmentVariable(PostgreSqlBenchStorage.EnvironmentVariable, cluster.ConnectionString);
        await Console.Error.WriteLineAsync($"[bench] {PostgreSqlBenchStorage.EnvironmentVariable} is not set: started a throwaway PostgreSQL at 127.0.0.1:{cluster.Port} (folder {cluster.Folder}); it is stopped and deleted at the end");
    }

    return await BenchParent.RunAsync(options, cancel.Token);
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    await Console.Error.WriteLineAsync("[bench] canceled.");
    return 130;
}
finally
{
    if (cluster is not null)
    {
        try
        {
            await cluster.StopAsync();
        }
        catch (InvalidOperationException ex)
        {
            await Console.Error.WriteLineAsync($"[bench] pg_ctl stop failed ({ex.Message.Trim()}); stopping it immediately.");
            cluster.StopImmediately();
        }

        await Console.Error.WriteLineAsync("[bench] stopped and deleted the throwaway PostgreSQL.");
    }
}
