using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Inbox.Reliability.Conformance;
using Xunit.Abstractions;

namespace Inbox.Reliability.Sqlite.Tests;

/// <summary>A webhook the crash scenario sends: message n of chat n % chats, a Z-API text message.</summary>
public sealed record CrashWebhook(int N, int Chat, string MessageId, byte[] Body, byte[] Sha256);

/// <summary>
/// The webhook crash scenario shared by the SQLite and PostgreSQL crash tests: 16 concurrent HTTP clients POST Z-API
/// text webhooks to a TestHost child (<c>--mode webhooks</c>) that is killed with SIGKILL at three points (two while the
/// clients send, one while the pipeline works through the backlog) and restarted each time on the same port and storage.
/// A request without a 2xx answer (refused, reset, no answer, 503) is resent with the same body until it gets one; each
/// chat's messages are sent by one client, in order, each after the previous one was answered, so per-chat send order is
/// defined. The storage-specific checks (raw rows, events) stay in each test; <see cref="AssertHandlerLog"/> checks what
/// the handler saw.
/// </summary>
public sealed class WebhookCrashScenario(ITestOutputHelper output, int total, int chats)
{
    public const int Clients = 16;
    public const int Kills = 3;
    public const string Instance = "inst-1";
    public const string Secret = "crash-secret";

    /// <summary>Short leases so a restarted child takes over what a killed one held within seconds.</summary>
    public const int LeaseMs = 3000;

    private static readonly long BaseMillis = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(90);

    private int _answered;
    private int _failures;
    private int _serviceUnavailable;
    private int _duplicates;

    public CrashWebhook[] Messages { get; } = Enumerable.Range(0, total).Select(n => Message(n, chats)).ToArray();

    /// <summary>Per message, every raw id its 2xx answers named.</summary>
    public ConcurrentDictionary<int, ConcurrentBag<long>> AnsweredIds { get; } = new();

    public string Folder { get; } = Path.Combine(Path.GetTempPath(), "inbox-webhook-crash-tests", Guid.NewGuid().ToString("n"));

    public string LogPath => Path.Combine(Folder, "handler.log");

    public Stopwatch Clock { get; } = new();

    /// <summary>
    /// Kill points from INBOX_CRASH_SEED (or a random seed, printed): two counts of answered webhooks in
    /// [<paramref name="first"/>, <paramref name="last"/>) (one in each half), then a count of handler log lines in
    /// [<paramref name="firstLog"/>, <paramref name="lastLog"/>).
    /// </summary>
    public int[] KillPoints(int first, int last, int firstLog, int lastLog)
    {
        var seed = Environment.GetEnvironmentVariable("INBOX_CRASH_SEED") is { Length: > 0 } fixedSeed
            ? int.Parse(fixedSeed, CultureInfo.InvariantCulture)
            : Random.Shared.Next();
        var random = new Random(seed);
        var segment = (last - first) / 2;
        int[] points = [random.Next(first, first + segment), random.Next(first + segment, last), random.Next(firstLog, lastLog)];
        output.WriteLine($"seed {seed} (INBOX_CRASH_SEED={seed} replays it); kill points: {points[0]} and {points[1]} webhooks answered 2xx, then {points[2]} handler log lines");
        return points;
    }

    /// <summary>
    /// Runs the scenario: starts the child with <paramref name="storageArguments"/>, sends every webhook while killing
    /// and restarting it at <paramref name="killPoints"/>, waits until <paramref name="rawCounts"/> reports nothing left to
    /// ingest and the handler log holds every message, then stops the child (exit code 0).
    /// </summary>
    public async Task RunAsync(string[] storageArguments, int[] killPoints, Func<Task<(long Raw, long Captured)>> rawCounts)
    {
        Directory.CreateDirectory(Folder);
        var baseAddress = new Uri($"http://127.0.0.1:{FreePort()}");
        string[] childArguments =
        [
            "--mode", "webhooks", "--urls", baseAddress.ToString().TrimEnd('/'), .. storageArguments,
            "--log", LogPath, "--lease-ms", LeaseMs.ToString(CultureInfo.InvariantCulture), "--heartbeat-ms", "500", "--reaper-ms", "500",
        ];
        Clock.Restart();

        // Clients wait on this while the child is down (reset right after each kill, completed once the new child is READY).
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Clients, PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) };
        using var http = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(15) };
        using var stop = new CancellationTokenSource();
        TestHostProcess? child = null;
        var finished = false;
        try
        {
            child = await TestHostProcess.StartAsync(childArguments);
            up.TrySetResult();
            output.WriteLine($"child {child.Id} ready on {baseAddress} at {Clock.Elapsed.TotalSeconds:F2} s");

            async Task ClientAsync(int client)
            {
                foreach (var message in Messages.Where(m => m.Chat % Clients == client))
                {
                    while (!await TrySendAsync(http, message, Volatile.Read(ref up).Task, stop.Token))
                    {
                        // Refused, reset, no answer or 503: resend the same body once the child is up.
                    }
                }
            }

            var clients = Enumerable.Range(0, Clients).Select(c => Task.Run(() => ClientAsync(c))).ToList();
            var all = Task.WhenAll(clients);
            try
            {
                for (var kill = 0; kill < Kills; kill++)
                {
                    var threshold = killPoints[kill];
                    var running = child;
                    var byLog = kill == Kills - 1;
                    await Eventually.TrueAsync(
                        () => (byLog ? LogLineCount() : Volatile.Read(ref _answered)) >= threshold || running.HasExited || all.IsFaulted,
                        byLog ? $"{threshold} handler log lines" : $"{threshold} webhooks to be answered 2xx",
                        byLog ? SettleTimeout : SendTimeout);
                    if (all.IsFaulted) await all;
                    Assert.False(running.HasExited, $"The test host exited by itself (code {(running.HasExited ? running.ExitCode : 0)}) before kill {kill + 1}: {string.Join(Environment.NewLine, running.Errors)}");

                    // Killed while clients are mid-request; only then are they held (a failed request is resent once the
                    // new child is up), so the kill does land on requests in flight.
                    await child.KillAsync();
                    Volatile.Write(ref up, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                    var (raw, captured) = await rawCounts();
                    output.WriteLine(
                        $"kill {kill + 1} (pid {child.Id}) at {Clock.Elapsed.TotalSeconds:F1} s: point {threshold}, answered {Volatile.Read(ref _answered)}, " +
                        $"raw rows {raw} ({captured} not yet ingested), handler log lines {LogLineCount()}");
                    child.WriteErrors(output.WriteLine);
                    if (byLog) Assert.True(ReadLog().Select(l => l.MessageId).Distinct().Count() < total, $"Kill {kill + 1} came after every message was delivered: it did not hit a busy pipeline.");
                    else Assert.True(Volatile.Read(ref _answered) < total, $"Kill {kill + 1} came after every webhook was answered: it did not hit requests in flight.");

                    await child.DisposeAsync();
                    child = null;
                    child = await TestHostProcess.StartAsync(childArguments);
                    Volatile.Read(ref up).TrySetResult();
                    output.WriteLine($"child {child.Id} ready at {Clock.Elapsed.TotalSeconds:F2} s");
                }

                await Eventually.Within(all.ContinueWith(t => t, TaskScheduler.Default), "every webhook to be answered 2xx", SendTimeout);
                await all;
                finished = true;
            }
            finally
            {
                await stop.CancelAsync();
                try
                {
                    await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(30));
                }
                catch (Exception) when (!finished)
                {
                    // The first failure is reported above.
                }
            }

            output.WriteLine(
                $"all {total} answered 2xx at {Clock.Elapsed.TotalSeconds:F1} s: {Volatile.Read(ref _duplicates)} answered \"duplicate\", " +
                $"{Volatile.Read(ref _failures)} requests failed (refused/reset/no answer), {Volatile.Read(ref _serviceUnavailable)} answered 503");

            var expected = Messages.Select(m => m.MessageId).ToHashSet();
            await Eventually.TrueAsync(
                async () => (await rawCounts()).Captured == 0 && ReadLog().Select(l => l.MessageId).ToHashSet().IsSupersetOf(expected),
                "every raw webhook ingested and every message in the handler log", SettleTimeout);
            output.WriteLine($"pipeline settled at {Clock.Elapsed.TotalSeconds:F1} s");
            var exitCode = await child.StopAsync();
            child.WriteErrors(output.WriteLine);
            Assert.Equal(0, exitCode);
        }
        finally
        {
            if (child is not null) await child.DisposeAsync();
        }
    }

    /// <summary>One POST; true once answered 2xx (its raw id recorded), false when it must be resent.</summary>
    private async Task<bool> TrySendAsync(HttpClient http, CrashWebhook message, Task up, CancellationToken stop)
    {
        stop.ThrowIfCancellationRequested();
        await up.WaitAsync(stop);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/webhooks/zapi/{Instance}?secret={Secret}") { Content = new ByteArrayContent(message.Body) };
        request.Content.Headers.ContentType = new("application/json");
        HttpStatusCode status;
        string text;
        try
        {
            using var response = await http.SendAsync(request, stop);
            status = response.StatusCode;
            text = await response.Content.ReadAsStringAsync(stop);
        }
        // No answer: the host died before, during or after the request. A connection reset right after connecting can also
        // surface as a bare SocketException (the connection pool reads the socket's remote end point).
        catch (Exception ex) when (ex is HttpRequestException or IOException or SocketException or TaskCanceledException && !stop.IsCancellationRequested)
        {
            Interlocked.Increment(ref _failures);
            return false;
        }

        if (status == HttpStatusCode.ServiceUnavailable)
        {
            Interlocked.Increment(ref _serviceUnavailable);
            return false;
        }

        if ((int)status is < 200 or >= 300) throw new InvalidOperationException($"{message.MessageId}: answered {(int)status}: {text}");
        using var json = JsonDocument.Parse(text);
        var state = json.RootElement.GetProperty("status").GetString();
        if (state == "duplicate") Interlocked.Increment(ref _duplicates);
        else if (state != "stored") throw new InvalidOperationException($"{message.MessageId}: answered {(int)status} with status {state}: {text}");
        AnsweredIds.GetOrAdd(message.N, _ => []).Add(json.RootElement.GetProperty("id").GetInt64());
        Interlocked.Increment(ref _answered);
        return true;
    }

    /// <summary>
    /// Every message was answered 2xx, every answer for one body named the same raw row, and no two bodies share one.
    /// Returns the raw id of each message.
    /// </summary>
    public Dictionary<int, long> AssertOneRawIdPerBody()
    {
        Assert.Equal(total, AnsweredIds.Count);
        var idOf = new Dictionary<int, long>();
        foreach (var (n, ids) in AnsweredIds)
        {
            var distinct = ids.Distinct().ToList();
            Assert.True(distinct.Count == 1, $"{Messages[n].MessageId} was answered with different raw ids: {string.Join(", ", distinct)}");
            idOf[n] = distinct[0];
        }

        Assert.Equal(total, idOf.Values.Distinct().Count());
        return idOf;
    }

    /// <summary>The handler saw exactly the messages sent (set equality), each chat under one chat id, per chat in send order.</summary>
    public void AssertHandlerLog()
    {
        var log = ReadLog();
        var byId = Messages.ToDictionary(m => m.MessageId);
        var seen = log.Select(l => l.MessageId).ToHashSet();
        var unexpected = seen.Where(id => !byId.ContainsKey(id)).Take(10).ToList();
        var missing = byId.Keys.Where(id => !seen.Contains(id)).Take(10).ToList();
        Assert.True(unexpected.Count == 0 && missing.Count == 0, $"Handler log vs sent: unexpected {string.Join(", ", unexpected)}; missing {string.Join(", ", missing)}.");
        var chatIds = log.GroupBy(l => byId[l.MessageId].Chat).ToDictionary(g => g.Key, g => g.Select(l => l.ChatId).Distinct().ToList());
        Assert.True(chatIds.All(c => c.Value.Count == 1), "A chat was delivered under several chat ids.");
        Assert.Equal(chats, chatIds.Values.Select(c => c[0]).Distinct().Count());
        output.WriteLine($"handler log: {log.Count} deliveries of {seen.Count} messages; {log.Count - seen.Count} redeliveries (at least once across kills)");

        // Per chat, the order of first deliveries is the send order.
        var first = new HashSet<string>();
        var order = new Dictionary<int, List<int>>();
        foreach (var line in log)
        {
            if (!first.Add(line.MessageId)) continue;
            var message = byId[line.MessageId];
            if (!order.TryGetValue(message.Chat, out var list)) order[message.Chat] = list = [];
            list.Add(message.N);
        }

        foreach (var (chat, delivered) in order)
        {
            var sent = Messages.Where(m => m.Chat == chat).Select(m => m.N).ToList();
            Assert.True(sent.SequenceEqual(delivered), $"Chat {chat} was delivered out of order: {string.Join(",", delivered.Zip(sent).Where(p => p.First != p.Second).Take(5).Select(p => $"got {p.First} for {p.Second}"))}");
        }
    }

    /// <summary>Deletes the folder after a pass; keeps it (and says where) after a failure.</summary>
    public void CleanUp(bool passed)
    {
        if (!passed)
        {
            output.WriteLine($"kept for inspection: {Folder}");
            return;
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // Temp folder; the OS cleans it eventually.
        }
    }

    private static CrashWebhook Message(int n, int chats)
    {
        var chat = n % chats;
        var messageId = "M" + n.ToString(CultureInfo.InvariantCulture);
        var phone = "5511" + (900000000 + chat).ToString(CultureInfo.InvariantCulture);
        var json = string.Create(
            CultureInfo.InvariantCulture,
            $$$"""{"type":"ReceivedCallback","instanceId":"I1","messageId":"{{{messageId}}}","phone":"{{{phone}}}","fromMe":false,"momment":{{{BaseMillis + n}}},"text":{"message":"{{{n}}}"}}""");
        var body = Encoding.UTF8.GetBytes(json);
        return new CrashWebhook(n, chat, messageId, body, SHA256.HashData(body));
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private byte[] ReadLogBytes()
    {
        if (!File.Exists(LogPath)) return [];
        using var file = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var memory = new MemoryStream();
        file.CopyTo(memory);
        return memory.ToArray();
    }

    private int LogLineCount() => ReadLogBytes().Count(b => b == (byte)'\n');

    /// <summary>Complete lines only ("messageId chatId"); a partial last line (being written) is ignored.</summary>
    private List<(string MessageId, string ChatId)> ReadLog()
    {
        var text = Encoding.UTF8.GetString(ReadLogBytes());
        var end = text.LastIndexOf('\n');
        var lines = new List<(string, string)>();
        if (end < 0) return lines;
        foreach (var line in text[..end].Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ');
            Assert.True(parts.Length == 2, $"Malformed handler log line: \"{line}\"");
            lines.Add((parts[0], parts[1]));
        }

        return lines;
    }
}
