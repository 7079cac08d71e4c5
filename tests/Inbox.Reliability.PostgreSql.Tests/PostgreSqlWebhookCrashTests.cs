using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Sqlite.Tests;
using Npgsql;
using Xunit.Abstractions;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>
/// The webhook crash test on PostgreSQL, smaller than the SQLite one: 16 concurrent HTTP clients POST 4,000 Z-API text
/// webhooks (100 chats) to a child process (tests/Inbox.Reliability.TestHost --mode webhooks --storage postgres) that is
/// killed with SIGKILL three times (twice while the clients send, so group commits of captures are cut mid-way, once while
/// the pipeline works through the backlog, so ingest and dispatch transactions are) and restarted each time on the same
/// port and schema. A request without a 2xx answer is resent with the same body until it gets one; each chat's messages
/// are sent by one client, in order, each after the previous one was answered. Set INBOX_CRASH_SEED to replay the kill
/// points of a run (the seed is printed).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlWebhookCrashTests(PostgresServer server, ITestOutputHelper output)
{
    private const int Total = 4_000;
    private const int Chats = 100;
    private const int Clients = 16;
    private const int Kills = 3;
    private const string Instance = "inst-1";
    private const string Secret = "crash-secret";
    private const int LeaseMs = 3000;

    private static readonly long BaseMillis = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(90);

    private sealed record Sent(int N, int Chat, string MessageId, byte[] Body, byte[] Sha256);

    [Fact]
    public async Task Webhooks_over_http_survive_kill_9_three_times_one_raw_row_each_gap_free_sequences_every_message_delivered_in_chat_order()
    {
        var seed = Environment.GetEnvironmentVariable("INBOX_CRASH_SEED") is { Length: > 0 } fixedSeed
            ? int.Parse(fixedSeed, CultureInfo.InvariantCulture)
            : Random.Shared.Next();
        var random = new Random(seed);
        int[] thresholds = [random.Next(Total / 10, Total * 4 / 10), random.Next(Total * 4 / 10, Total * 7 / 10), random.Next(Total * 2 / 10, Total * 6 / 10)];
        output.WriteLine($"seed {seed} (INBOX_CRASH_SEED={seed} replays it); kill points: {thresholds[0]} and {thresholds[1]} webhooks answered 2xx, then {thresholds[2]} handler log lines");

        await using var storage = new PostgreSqlStorage(server);
        var schema = storage.Schema;
        var folder = Path.Combine(Path.GetTempPath(), "inbox-pg-webhook-crash-tests", Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(folder);
        var logPath = Path.Combine(folder, "handler.log");
        var port = FreePort();
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        string[] childArguments =
        [
            "--mode", "webhooks", "--urls", baseAddress.ToString().TrimEnd('/'), "--storage", "postgres", "--connection", server.ConnectionString, "--schema", schema,
            "--log", logPath, "--lease-ms", LeaseMs.ToString(CultureInfo.InvariantCulture), "--heartbeat-ms", "500", "--reaper-ms", "500",
        ];

        var messages = Enumerable.Range(0, Total).Select(Message).ToArray();
        var answeredIds = new ConcurrentDictionary<int, ConcurrentBag<long>>();
        var answered = 0;
        var failures = 0;
        var duplicates = 0;
        var passed = false;
        var clock = Stopwatch.StartNew();
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

                async Task ClientAsync(int client)
                {
                    foreach (var message in messages.Where(m => m.Chat % Clients == client))
                    {
                        while (true)
                        {
                            stop.Token.ThrowIfCancellationRequested();
                            await Volatile.Read(ref up).Task.WaitAsync(stop.Token);
                            using var request = new HttpRequestMessage(HttpMethod.Post, $"/webhooks/zapi/{Instance}?secret={Secret}") { Content = new ByteArrayContent(message.Body) };
                            request.Content.Headers.ContentType = new("application/json");
                            string text;
                            HttpStatusCode status;
                            try
                            {
                                using var response = await http.SendAsync(request, stop.Token);
                                status = response.StatusCode;
                                text = await response.Content.ReadAsStringAsync(stop.Token);
                            }
                            catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException && !stop.IsCancellationRequested)
                            {
                                Interlocked.Increment(ref failures);
                                continue; // refused, reset or no answer: resend the same body
                            }

                            if (status == HttpStatusCode.ServiceUnavailable)
                            {
                                Interlocked.Increment(ref failures);
                                continue;
                            }

                            if ((int)status is < 200 or >= 300) throw new InvalidOperationException($"{message.MessageId}: answered {(int)status}: {text}");
                            using var json = JsonDocument.Parse(text);
                            var state = json.RootElement.GetProperty("status").GetString();
                            if (state == "duplicate") Interlocked.Increment(ref duplicates);
                            else if (state != "stored") throw new InvalidOperationException($"{message.MessageId}: answered {(int)status} with status {state}: {text}");
                            answeredIds.GetOrAdd(message.N, _ => []).Add(json.RootElement.GetProperty("id").GetInt64());
                            Interlocked.Increment(ref answered);
                            break;
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
                        Assert.False(running.HasExited, $"The test host exited by itself before kill {kill + 1}: {string.Join(Environment.NewLine, running.Errors)}");

                        await child.KillAsync();
                        Volatile.Write(ref up, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                        var (raw, captured) = await RawCountsAsync(schema);
                        output.WriteLine($"kill {kill + 1} at {clock.Elapsed.TotalSeconds:F1} s: answered {Volatile.Read(ref answered)}, raw rows {raw} ({captured} not yet ingested), handler log lines {LogLineCount(logPath)}");
                        if (byLog) Assert.True(ReadLog(logPath).Select(l => l.MessageId).Distinct().Count() < Total, $"Kill {kill + 1} came after every message was delivered.");
                        else Assert.True(Volatile.Read(ref answered) < Total, $"Kill {kill + 1} came after every webhook was answered.");

                        await child.DisposeAsync();
                        child = null;
                        child = await TestHostProcess.StartAsync(childArguments);
                        Volatile.Read(ref up).TrySetResult();
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

                output.WriteLine($"all {Total} answered 2xx at {clock.Elapsed.TotalSeconds:F1} s: {duplicates} answered \"duplicate\", {failures} requests failed or got 503");
                var expected = messages.Select(m => m.MessageId).ToHashSet();
                await Eventually.TrueAsync(
                    async () => (await RawCountsAsync(schema)).Captured == 0 && ReadLog(logPath).Select(l => l.MessageId).ToHashSet().IsSupersetOf(expected),
                    "every raw webhook ingested and every message in the handler log", SettleTimeout);
                Assert.Equal(0, await child.StopAsync());
            }
            finally
            {
                if (child is not null) await child.DisposeAsync();
            }

            await AssertOutcomeAsync(schema, messages, answeredIds, logPath);
            output.WriteLine($"passed in {clock.Elapsed.TotalSeconds:F1} s");
            passed = true;
        }
        finally
        {
            if (passed) TryDelete(folder);
            else output.WriteLine($"kept for inspection: {folder}");
        }
    }

    private async Task AssertOutcomeAsync(string schema, Sent[] messages, ConcurrentDictionary<int, ConcurrentBag<long>> answeredIds, string logPath)
    {
        // Every 2xx for one body named the same raw row, which holds that body; one row per body, all ingested.
        Assert.Equal(Total, answeredIds.Count);
        var rows = new Dictionary<long, (byte[] Sha256, int Status)>();
        await using (var connection = await server.OpenAsync())
        await using (var command = new NpgsqlCommand($"SELECT id, sha256, status FROM \"{schema}\".raw_webhooks", connection))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) rows[reader.GetInt64(0)] = (reader.GetFieldValue<byte[]>(1), reader.GetInt16(2));
        }

        Assert.Equal(Total, rows.Count);
        foreach (var (n, ids) in answeredIds)
        {
            var id = Assert.Single(ids.Distinct());
            Assert.True(rows.TryGetValue(id, out var row) && row.Sha256.AsSpan().SequenceEqual(messages[n].Sha256), $"{messages[n].MessageId} was answered with raw id {id}, which does not hold its body.");
        }

        Assert.All(rows.Values, r => Assert.Equal(1, r.Status));

        // One event per message, sequence numbers 1..Total without a gap, even with ingest transactions cut by kill -9.
        await using (var connection = await server.OpenAsync())
        await using (var command = new NpgsqlCommand($"SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM \"{schema}\".events", connection))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            await reader.ReadAsync();
            Assert.Equal((long)Total, reader.GetInt64(0));
            Assert.Equal((long)Total, reader.GetInt64(1));
            Assert.Equal((1L, (long)Total), (reader.GetInt64(2), reader.GetInt64(3)));
        }

        // The handler saw exactly the messages sent; per chat, first deliveries in send order.
        var log = ReadLog(logPath);
        var byId = messages.ToDictionary(m => m.MessageId);
        Assert.True(log.All(l => byId.ContainsKey(l.MessageId)), "The handler saw a message that was not sent.");
        Assert.Equal(Total, log.Select(l => l.MessageId).Distinct().Count());
        output.WriteLine($"handler log: {log.Count} deliveries of {Total} messages (at least once across kills)");
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
            Assert.True(messages.Where(m => m.Chat == chat).Select(m => m.N).SequenceEqual(delivered), $"Chat {chat} was delivered out of order.");
        }
    }

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

    private async Task<(long Raw, long Captured)> RawCountsAsync(string schema)
    {
        await using var connection = await server.OpenAsync();
        await using var exists = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", connection);
        exists.Parameters.Add(new NpgsqlParameter { Value = $"\"{schema}\".raw_webhooks" });
        if (!(bool)(await exists.ExecuteScalarAsync())!) return (0, 0);
        await using var command = new NpgsqlCommand($"SELECT count(*), count(*) FILTER (WHERE status = 0) FROM \"{schema}\".raw_webhooks", connection);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
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
