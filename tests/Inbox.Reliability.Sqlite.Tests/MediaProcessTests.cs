using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Conformance;
using Inbox.Reliability.Testing;
using Inbox.Reliability.TestHost;
using Xunit.Abstractions;

namespace Inbox.Reliability.Sqlite.Tests;

/// <summary>
/// Media through a real host process (Kestrel, SQLite, a file-system media store) fed by the fake provider on loopback:
/// its memory while a 200 MB file streams through, and a kill -9 in the middle of an upload.
/// </summary>
[Collection(CrashTestsCollection.Name)]
public sealed class MediaProcessTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const long MB = 1024 * 1024;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "inbox-media-process-tests", Guid.NewGuid().ToString("n"));
    private FakeMediaProvider _fake = null!;
    private HttpClient _http = null!;
    private int _port;

    private string Database => Path.Combine(_folder, "inbox.db");

    private string LogPath => Path.Combine(_folder, "handler.log");

    private string MediaRoot => Path.Combine(_folder, "media");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        _fake = await FakeMediaProvider.StartAsync();
        _port = FreePort();
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_port}"), Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _fake.DisposeAsync();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A killed child may still hold a file for a moment; the folder is in the temp directory.
        }
    }

    private Task<TestHostProcess> StartHostAsync(params string[] extra) => TestHostProcess.StartAsync(
    [
        "--mode", "webhooks", "--urls", $"http://127.0.0.1:{_port}", "--storage", "sqlite", "--connection", $"Data Source={Database}",
        "--log", LogPath, "--media-root", MediaRoot, "--media-max-mb", "300", "--lease-ms", "2000", "--heartbeat-ms", "500", "--reaper-ms", "500",
        .. extra,
    ]);

    private async Task PostAsync(string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await _http.PostAsync($"/webhooks/zapi/inst-1?secret={WebhookMode.ZApiSecret}", content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    /// <summary>Complete handler log lines ("messageId chatId status key [update]").</summary>
    private string[] LogLines()
    {
        if (!File.Exists(LogPath)) return [];
        using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var text = reader.ReadToEnd();
        var end = text.LastIndexOf('\n');
        return end < 0 ? [] : text[..end].Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private string[] LinesOf(FakeMedia media) => LogLines().Where(l => l.StartsWith(media.MessageId + " ", StringComparison.Ordinal)).ToArray();

    private static long ProcStatusKb(int pid, string field)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"/proc/{pid}/status has no {field}.");
    }

    private string StoredPath(string line)
    {
        var parts = line.Split(' ');
        Assert.True(parts.Length >= 4 && parts[2] == "Stored", $"not stored: \"{line}\"");
        return Path.Combine(MediaRoot, parts[3]);
    }

    private static async Task<string> Sha256Base64Async(string path)
    {
        await using var file = File.OpenRead(path);
        return Convert.ToBase64String(await SHA256.HashDataAsync(file));
    }

    [Fact]
    public async Task A_200_MB_media_streams_through_with_peak_memory_growth_under_50_MB()
    {
        await using var child = await StartHostAsync();

        // Warm up the whole path (JIT, pools) with a small file first, so the measurement is the large file's own cost.
        var small = _fake.AddMedia(1 * MB, "video/mp4");
        await PostAsync(_fake.ZApiWebhook(small));
        await Eventually.TrueAsync(() => LinesOf(small).Length == 1, "the warm-up media to be stored and delivered", TimeSpan.FromSeconds(60));

        File.WriteAllText($"/proc/{child.Id}/clear_refs", "5"); // resets the peak (VmHWM) to the current RSS
        var baseline = ProcStatusKb(child.Id, "VmRSS");
        var large = _fake.AddMedia(200 * MB, "video/mp4");
        await PostAsync(_fake.ZApiWebhook(large));
        await Eventually.TrueAsync(() => LinesOf(large).Length == 1, "the 200 MB media to be stored and delivered", TimeSpan.FromSeconds(120));
        var peak = ProcStatusKb(child.Id, "VmHWM");
        var growthMb = (peak - baseline) / 1024.0;
        output.WriteLine($"RSS before {baseline / 1024.0:F1} MB, peak while the 200 MB media went through {peak / 1024.0:F1} MB: growth {growthMb:F1} MB");

        var path = StoredPath(LinesOf(large)[0]);
        Assert.Equal(200 * MB, new FileInfo(path).Length);
        Assert.Equal(large.Sha256Base64, await Sha256Base64Async(path));
        Assert.True(growthMb < 50, $"peak memory grew {growthMb:F1} MB (limit 50 MB)");
    }

    [Fact]
    public async Task A_host_killed_mid_upload_stores_the_media_once_after_restart_and_delivers_its_message_once()
    {
        var child = await StartHostAsync("--media-wait-ms", "120000");
        var media = _fake.AddMedia(200 * MB, "video/mp4");
        try
        {
            await PostAsync(_fake.ZApiWebhook(media));

            // Kill while the upload is under way: its temporary file has grown past 20 MB and the object is not there yet.
            await Eventually.TrueAsync(
                () => Directory.Exists(MediaRoot) && Directory.EnumerateFiles(MediaRoot, "*~tmp-*", SearchOption.AllDirectories).Any(f => new FileInfo(f).Length > 20 * MB),
                "the upload to be under way", TimeSpan.FromSeconds(60));
            await child.KillAsync();
            Assert.Empty(Directory.EnumerateFiles(MediaRoot, "*.mp4", SearchOption.AllDirectories));
            Assert.Empty(LinesOf(media));
            output.WriteLine($"killed mid-upload after {media.DownloadRequests} download request(s)");
        }
        finally
        {
            await child.DisposeAsync();
        }

        // A new host takes the media job over once its lease expires, downloads again and stores it once.
        await using var restarted = await StartHostAsync("--media-wait-ms", "120000");
        await Eventually.TrueAsync(() => LinesOf(media).Length >= 1, "the message to be delivered after the restart", TimeSpan.FromSeconds(120));
        var lines = LinesOf(media);
        Assert.Single(lines);
        var path = StoredPath(lines[0]);
        Assert.Equal(media.Sha256Base64, await Sha256Base64Async(path));
        Assert.Single(Directory.EnumerateFiles(MediaRoot, "*.mp4", SearchOption.AllDirectories));
        Assert.Empty(Directory.EnumerateFiles(MediaRoot, "*~tmp-*", SearchOption.AllDirectories)); // the killed upload's leftover is gone
        Assert.Equal(2, media.DownloadRequests);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
