using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Inbox.Reliability.Conformance;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Inbox.Reliability.Sqlite.Tests;

/// <summary>
/// Webhook crash test: 16 concurrent HTTP clients POST 10,000 Z-API text webhooks (100 chats) to a child process
/// (tests/Inbox.Reliability.TestHost --mode webhooks: Kestrel on loopback, SQLite) that is killed with SIGKILL at three
/// random points (two while the clients send, one while the pipeline works through the backlog) and restarted each
/// time on the same port and database. A request without a 2xx answer (connection
/// refused or reset, no answer, 503) is resent with the same body until it gets one. Each chat's messages are sent by
/// one client, in order, each after the previous one was answered, so per-chat send order is defined.
/// Set INBOX_CRASH_SEED to replay the kill points of a run (the seed is printed).
/// </summary>
[Collection(CrashTestsCollection.Name)]
public sealed class WebhookCrashTests(ITestOutputHelper output)
{
    private const int Total = 10_000;
    private const int Chats = 100;
    private const int Clients = 16;
    private const int Kills = 3;
    private const string Instance = "inst-1";
    private const string Secret = "crash-secret";

    /// <summary>
    /// Kills 1 and 2 come while the clients are sending: when 10% to 80% of the webhooks have been answered (one point in
    /// each half of that range), so they land on requests in flight. Ingest and dispatch lag capture by far, so kill 3
    /// comes while the pipeline works through the backlog: when the handler log holds 20% to 70% of the messages.
    /// </summary>
    private const int FirstThreshold = Total / 10;
    private const int LastThreshold = Total * 8 / 10;
    private const int FirstLogThreshold = Total * 2 / 10;
    private const int LastLogThreshold = Total * 7 / 10;

    /// <summary>Short leases so a restarted child takes over what a killed one held within seconds.</summary>
    private const int LeaseMs = 3000;

    private static readonly long BaseMillis = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(90);

    private sealed record Sent(int N, int Chat, string MessageId, byte[] Body, byte[] Sha256);

    [Fact]
    public async Task Webhooks_over_http_survive_kill_9_three_times_one_raw_row_each_every_message_delivered_in_chat_order()
    {
        var seed = Environment.GetEnvironmentVariable("INBOX_CRASH_SEED") is { Length: > 0 } fixedSeed
            ? int.Parse(fixedSeed, CultureInfo.InvariantCulture)
            : Random.Shared.Next();
        var random = new Random(seed);
        var segment = (LastThreshold - FirstThreshold) / 2;
        int[] thresholds =
        [
            random.Next(FirstThreshold, FirstThreshold + segment),
            random.Next(FirstThreshold + segment, LastThreshold),
            random.Next(FirstLogThreshold, LastLogThreshold),
        ];
        output.WriteLine(
            $"seed {seed} (INBOX_CRASH_SEED={seed} replays it); kill points: {thresholds[0]} and {thresholds[1]} webhooks answered 2xx, " +
            $"then {thresholds[2]} handler log lines");

        var folder = Path.Combine(Path.GetTempPath(), "inbox-webhook-crash-tests", Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(folder);
        var database = Path.Combine(folder, "inbox.db");
        var logPath = Path.Combine(folder, "handler.log");
        var port = FreePort();
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        string[] childArguments =
        [
            "--mode", "webhooks", "--urls", baseAddress.ToString().TrimEnd('/'), "--storage", "sqlite", "--connection", $"Data Source={database}",
            "--log", logPath, "--lease-ms", LeaseMs.ToString(CultureInfo.InvariantCulture), "--heartbeat-ms", "500", "--reaper-ms", "500",
        ];

        var messages = Enumerable.Range(0, Total).Select(Message).ToArray();
        var answeredIds = new ConcurrentDictionary<int, ConcurrentBag<long>>();
        var answered = 0;
        var failures = 0;
        var serviceUnavailable = 0;
        var duplicates = 0;
        var passed = false;
        var clock = Stopwatch.StartNew();

        // Clients wait on this while the child is down (reset right after each kill, completed once the new child is READY).
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Clients, PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) };
        using var http = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(15) };
        using var stop = new CancellationTokenSource();

        TestHostProcess? child = null;
        try
        {
            try
            {
                child = await TestHostProcess.StartAsync(childArguments);
                up.TrySetResult();
                output.WriteLine($"child {child.Id} ready on port {port} at {clock.Elapsed.TotalSeconds:F2} s");

                async Task ClientAsync(int client)
                {
                    // This client's chats' messages, ascending: each chat's messages go in order, one at a time.
                    foreach (var message in messages.Where(m => m.Chat % Clients == client))
                    {
                        while (true)
                        {
                            stop.Token.ThrowIfCancellationRequested();
                            await Volatile.Read(ref up).Task.WaitAsync(stop.Token);
                            using var request = new HttpRequestMessage(HttpMethod.Post, $"/webhooks/zapi/{Instance}?secret={Secret}") { Content = new ByteArrayContent(message.Body) };
                            request.Content.Headers.ContentType = new("application/json");
                            HttpResponseMessage response;
                            try
                            {
                                response = await http.SendAsync(request, stop.Token);
                            }
                            catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException && !stop.IsCancellationRequested)
                            {
                                Interlocked.Increment(ref failures);
                                continue; // refused, reset or no answer: resend the same body.
                            }

                            using (response)
                            {
                                string text;
                                try
                                {
                                    text = await response.Content.ReadAsStringAsync(stop.Token);
                                }
                                catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException && !stop.IsCancellationRequested)
                                {
                                    Interlocked.Increment(ref failures);
                                    continue;
                                }

                                if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                                {
                                    Interlocked.Increment(ref serviceUnavailable);
                                    continue;
                                }

                                if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{message.MessageId}: answered {(int)response.StatusCode}: {text}");
                                using var json = JsonDocument.Parse(text);
                                var state = json.RootElement.GetProperty("status").GetString();
                                if (state == "duplicate") Interlocked.Increment(ref duplicates);
                                else if (state != "stored") throw new InvalidOperationException($"{message.MessageId}: answered {(int)response.StatusCode} with status {state}: {text}");
                                answeredIds.GetOrAdd(message.N, _ => []).Add(json.RootElement.GetProperty("id").GetInt64());
                                Interlocked.Increment(ref answered);
                                break;
                            }
                        }
                    }
                }

                var clients = Enumerable.Range(0, Clients).Select(c => Task.Run(() => ClientAsync(c))).ToList();
                var all = Task.WhenAll(clients);
                try
                {
                    for (var kill = 0; kill < Kills; kill++)
                    {
                        var threshold = thresholds[kill];
                        var running = child;
                        var byLog = kill == Kills - 1;
                        await Eventually.TrueAsync(
                            () => (byLog ? LogLineCount(logPath) : Volatile.Read(ref answered)) >= threshold || running.HasExited || all.IsFaulted,
                            byLog ? $"{threshold} handler log lines" : $"{threshold} webhooks to be answered 2xx",
                            byLog ? SettleTimeout : SendTimeout);
                        if (all.IsFaulted) await all;
                        Assert.False(running.HasExited, $"The test host exited by itself (code {(running.HasExited ? running.ExitCode : 0)}) before kill {kill + 1}: {string.Join(Environment.NewLine, running.Errors)}");

                        // Killed while clients are mid-request; only then are they held (a failed request is resent
                        // once the new child is up), so the kill does land on requests in flight.
                        await child.KillAsync();
                        Volatile.Write(ref up, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                        var (raw, captured) = RawCounts(database);
                        output.WriteLine(
                            $"kill {kill + 1} (pid {child.Id}) at {clock.Elapsed.TotalSeconds:F1} s: point {threshold}, answered {Volatile.Read(ref answered)}, " +
                            $"raw rows {raw} ({captured} not yet ingested), handler log lines {LogLineCount(logPath)}");
                        WriteErrors(child);
                        if (byLog) Assert.True(ReadLog(logPath).Select(l => l.MessageId).Distinct().Count() < Total, $"Kill {kill + 1} came after every message was delivered: it did not hit a busy pipeline.");
                        else Assert.True(Volatile.Read(ref answered) < Total, $"Kill {kill + 1} came after every webhook was answered: it did not hit requests in flight.");

                        await child.DisposeAsync();
                        child = null;
                        child = await TestHostProcess.StartAsync(childArguments);
                        Volatile.Read(ref up).TrySetResult();
                        output.WriteLine($"child {child.Id} ready at {clock.Elapsed.TotalSeconds:F2} s");
                    }

                    await Eventually.Within(all.ContinueWith(t => t, TaskScheduler.Default), "every webhook to be answered 2xx", SendTimeout);
                    await all;
                }
                finally
                {
                    await stop.CancelAsync();
                    try
                    {
                        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(30));
                    }
                    catch (Exception) when (!passed)
                    {
                        // The first failure is reported by the assertions above.
                    }
                }

                output.WriteLine(
                    $"all {Total} answered 2xx at {clock.Elapsed.TotalSeconds:F1} s: {Volatile.Read(ref duplicates)} answered \"duplicate\", " +
                    $"{Volatile.Read(ref failures)} requests failed (refused/reset/no answer), {Volatile.Read(ref serviceUnavailable)} answered 503");

                var expected = messages.Select(m => m.MessageId).ToHashSet();
                await Eventually.TrueAsync(
                    () => RawCounts(database).Captured == 0 && ReadLog(logPath).Select(l => l.MessageId).ToHashSet().IsSupersetOf(expected),
                    "every raw webhook ingested and every message in the handler log", SettleTimeout);
                output.WriteLine($"pipeline settled at {clock.Elapsed.TotalSeconds:F1} s");
                var exitCode = await child.StopAsync();
                WriteErrors(child);
                Assert.Equal(0, exitCode);
            }
            finally
            {
                if (child is not null) await child.DisposeAsync();
            }

            AssertOutcome(messages, answeredIds, database, logPath);
            output.WriteLine($"passed in {clock.Elapsed.TotalSeconds:F1} s");
            passed = true;
        }
        finally
        {
            if (passed) TryDelete(folder);
            else output.WriteLine($"kept for inspection: {folder}");
        }
    }

    private void AssertOutcome(Sent[] messages, ConcurrentDictionary<int, ConcurrentBag<long>> answeredIds, string database, string logPath)
    {
        // Every message got a 2xx, and every 2xx for one body named the same raw row; no two bodies share a row.
        Assert.Equal(Total, answeredIds.Count);
        var idOf = new Dictionary<int, long>();
        foreach (var (n, ids) in answeredIds)
        {
            var distinct = ids.Distinct().ToList();
            Assert.True(distinct.Count == 1, $"{messages[n].MessageId} was answered with different raw ids: {string.Join(", ", distinct)}");
            idOf[n] = distinct[0];
        }

        Assert.Equal(Total, idOf.Values.Distinct().Count());

        // Exactly one raw row per body: 10,000 rows, no body stored twice, each answered id holds the body sent.
        var rows = ReadRaw(database);
        var rawStatuses = rows.Values.GroupBy(r => r.Status).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine($"raw rows {rows.Count}, statuses {string.Join(", ", rawStatuses.Select(s => $"{s.Key}: {s.Value}"))}, duplicates counted {rows.Values.Sum(r => r.Duplicates)}");
        Assert.Equal(Total, rows.Count);
        Assert.Equal(Total, rows.Values.Select(r => Convert.ToHexString(r.Sha256)).Distinct().Count());
        foreach (var (n, id) in idOf)
        {
            Assert.True(rows.TryGetValue(id, out var row), $"{messages[n].MessageId} was answered 2xx with raw id {id}, which has no row.");
            Assert.True(row.Sha256.AsSpan().SequenceEqual(messages[n].Sha256), $"Raw row {id} does not hold the body of {messages[n].MessageId} answered with it.");
        }

        Assert.True(rows.Values.All(r => r.Status == 1), "Not every raw webhook was ingested (status 1).");

        // The handler saw exactly the messages sent (set equality), each chat as one chat id.
        var log = ReadLog(logPath);
        var byId = messages.ToDictionary(m => m.MessageId);
        var seen = log.Select(l => l.MessageId).ToHashSet();
        var unexpected = seen.Where(id => !byId.ContainsKey(id)).Take(10).ToList();
        var missing = byId.Keys.Where(id => !seen.Contains(id)).Take(10).ToList();
        Assert.True(unexpected.Count == 0 && missing.Count == 0, $"Handler log vs sent: unexpected {string.Join(", ", unexpected)}; missing {string.Join(", ", missing)}.");
        var chatIds = log.GroupBy(l => byId[l.MessageId].Chat).ToDictionary(g => g.Key, g => g.Select(l => l.ChatId).Distinct().ToList());
        Assert.True(chatIds.All(c => c.Value.Count == 1), "A chat was delivered under several chat ids.");
        Assert.Equal(Chats, chatIds.Values.Select(c => c[0]).Distinct().Count());

        var redelivered = log.Count - seen.Count;
        output.WriteLine($"handler log: {log.Count} deliveries of {seen.Count} messages; {redelivered} redeliveries (at least once across kills)");

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
            var sent = messages.Where(m => m.Chat == chat).Select(m => m.N).ToList();
            Assert.True(sent.SequenceEqual(delivered), $"Chat {chat} was delivered out of order: {string.Join(",", delivered.Zip(sent).Where(p => p.First != p.Second).Take(5).Select(p => $"got {p.First} for {p.Second}"))}");
        }
    }

    /// <summary>Message n goes to chat n % 100; its body is a Z-API ReceivedCallback text message.</summary>
    private static Sent Message(int n)
    {
        var chat = n % Chats;
        var messageId = "M" + n.ToString(CultureInfo.InvariantCulture);
        var phone = "5511" + (900000000 + chat).ToString(CultureInfo.InvariantCulture);
        var json = string.Create(
            CultureInfo.InvariantCulture,
            $$$"""{"type":"ReceivedCallback","instanceId":"I1","messageId":"{{{messageId}}}","phone":"{{{phone}}}","fromMe":false,"momment":{{{BaseMillis + n}}},"text":{"message":"{{{n}}}"}}""");
        var body = Encoding.UTF8.GetBytes(json);
        return new Sent(n, chat, messageId, body, SHA256.HashData(body));
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static SqliteConnection Open(string database)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false, DefaultTimeout = 30 }.ToString());
        connection.Open();
        return connection;
    }

    /// <summary>Raw webhook rows, and how many are still waiting to be ingested (status 0).</summary>
    private static (long Raw, long Captured) RawCounts(string database)
    {
        if (!File.Exists(database)) return (0, 0);
        using var connection = Open(database);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 0 THEN 1 ELSE 0 END), 0) FROM inbox_raw_webhooks";
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    private static Dictionary<long, (byte[] Sha256, int Status, long Duplicates)> ReadRaw(string database)
    {
        using var connection = Open(database);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, sha256, status, duplicates FROM inbox_raw_webhooks";
        using var reader = command.ExecuteReader();
        var rows = new Dictionary<long, (byte[], int, long)>();
        while (reader.Read()) rows[reader.GetInt64(0)] = ((byte[])reader.GetValue(1), reader.GetInt32(2), reader.GetInt64(3));
        return rows;
    }

    private static byte[] ReadLogBytes(string logPath)
    {
        if (!File.Exists(logPath)) return [];
        using var file = new FileStream(logPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var memory = new MemoryStream();
        file.CopyTo(memory);
        return memory.ToArray();
    }

    private static int LogLineCount(string logPath) => ReadLogBytes(logPath).Count(b => b == (byte)'\n');

    /// <summary>Complete lines only ("messageId chatId"); a partial last line (being written) is ignored.</summary>
    private static List<(string MessageId, string ChatId)> ReadLog(string logPath)
    {
        var text = Encoding.UTF8.GetString(ReadLogBytes(logPath));
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

    private void WriteErrors(TestHostProcess child)
    {
        var errors = child.Errors;
        if (errors.Count == 0) return;
        output.WriteLine($"  child {child.Id} stderr ({errors.Count} lines{(errors.Count > 20 ? ", first 20" : "")}):");
        foreach (var line in errors.Take(20)) output.WriteLine("    " + line);
    }

    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // Temp folder; the OS cleans it eventually.
        }
    }
}
