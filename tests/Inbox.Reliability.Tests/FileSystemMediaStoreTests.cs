using Inbox.Reliability.Media;

namespace Inbox.Reliability.Tests;

/// <summary>The file-system media store's options, key-to-path check and link signatures.</summary>
public sealed class FileSystemMediaStoreTests
{
    [Fact]
    public void Bad_options_are_reported_with_every_problem_and_never_the_key()
    {
        const string shortKey = "tooshort-secret-value";
        var errors = new FileSystemMediaStoreOptions { RootPath = " ", LinkBaseUrl = "ftp://example.com/media", LinkSigningKey = shortKey }.Validate().ToList();

        Assert.Equal(3, errors.Count);
        Assert.StartsWith("UseFileSystemMediaStore: a root folder is required", errors[0], StringComparison.Ordinal);
        Assert.StartsWith("UseFileSystemMediaStore: LinkBaseUrl must be an absolute http or https URL", errors[1], StringComparison.Ordinal);
        Assert.StartsWith("UseFileSystemMediaStore: LinkSigningKey must have at least 32 characters (it has 21)", errors[2], StringComparison.Ordinal);
        Assert.DoesNotContain(errors, e => e.Contains(shortKey, StringComparison.Ordinal));

        var query = new FileSystemMediaStoreOptions { LinkBaseUrl = "https://example.com/media?x=1" }.Validate();
        Assert.Contains("must not have a query string", Assert.Single(query), StringComparison.Ordinal);
        Assert.Empty(new FileSystemMediaStoreOptions { LinkBaseUrl = "https://api.example.com/media", LinkSigningKey = new string('x', 32) }.Validate());

        // The store refuses to start on bad options too, when built without the host's startup check.
        var invalid = Assert.Throws<InvalidOperationException>(() => new FileSystemMediaStore(new FileSystemMediaStoreOptions { RootPath = "" }, TimeProvider.System));
        Assert.Contains("a root folder is required", invalid.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Keys_resolve_inside_the_root_only()
    {
        var root = Path.Combine(Path.GetTempPath(), "inbox-media-unit", Guid.NewGuid().ToString("n"));
        var store = new FileSystemMediaStore(new FileSystemMediaStoreOptions { RootPath = root }, TimeProvider.System);
        Assert.Equal(Path.Combine(root, "a", "b.jpg"), store.ResolvePath("a/b.jpg"));
        Assert.Throws<ArgumentException>(() => store.ResolvePath("../b.jpg"));
        Assert.Throws<ArgumentException>(() => store.ResolvePath("/etc/passwd"));
        Assert.Throws<ArgumentException>(() => store.ResolvePath("a/../../b.jpg"));
        Assert.False(Directory.Exists(root));
    }

    [Fact]
    public async Task Links_check_signature_then_expiry()
    {
        var time = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var store = new FileSystemMediaStore(
            new FileSystemMediaStoreOptions { RootPath = Path.GetTempPath(), LinkBaseUrl = "https://x.example/media/", LinkSigningKey = new string('s', 32) },
            new FixedTime(time));
        var url = await store.GetReadUrlAsync("a/b.jpg", TimeSpan.FromSeconds(90));
        Assert.StartsWith("https://x.example/media/a/b.jpg?exp=1767225690&sig=", url.ToString(), StringComparison.Ordinal);
        var sig = url.Query.Split("&sig=")[1];

        Assert.Equal(MediaLinkCheck.Valid, store.CheckLink("a/b.jpg", "1767225690", sig, time.AddSeconds(89)));
        Assert.Equal(MediaLinkCheck.Expired, store.CheckLink("a/b.jpg", "1767225690", sig, time.AddSeconds(90)));
        Assert.Equal(MediaLinkCheck.Invalid, store.CheckLink("a/b.jpg", "1767225691", sig, time));
        Assert.Equal(MediaLinkCheck.Invalid, store.CheckLink("a/c.jpg", "1767225690", sig, time));
        Assert.Equal(MediaLinkCheck.Invalid, store.CheckLink("../b.jpg", "1767225690", sig, time));
        Assert.Equal(MediaLinkCheck.Invalid, store.CheckLink("a/b.jpg", "+1767225690", sig, time));
        Assert.Equal(MediaLinkCheck.Invalid, store.CheckLink("a/b.jpg", "1767225690", sig + "A", time));
        Assert.Equal(MediaLinkCheck.Invalid, store.CheckLink("a/b.jpg", "1767225690", "***", time));
        Assert.Equal(MediaLinkCheck.Invalid, store.CheckLink("a/b.jpg", null, sig, time));
        Assert.Equal(MediaLinkCheck.Invalid, store.CheckLink("a/b.jpg", "1767225690", null, time));
    }

    [Fact]
    public async Task A_put_removes_what_a_killed_put_of_the_key_left_but_not_a_live_put_s_files()
    {
        var root = Path.Combine(Path.GetTempPath(), "inbox-media-unit", Guid.NewGuid().ToString("n"));
        try
        {
            var store = new FileSystemMediaStore(new FileSystemMediaStoreOptions { RootPath = root }, TimeProvider.System);
            var folder = Path.Combine(root, "a");
            Directory.CreateDirectory(folder);

            // A killed put: its files, closed, a while ago. A live one: open by its writer (shared for delete, as the store does).
            var dead = Path.Combine(folder, "x.bin~tmp-dead");
            var deadSidecar = dead + "~meta";
            await File.WriteAllBytesAsync(dead, new byte[1000]);
            await File.WriteAllBytesAsync(deadSidecar, new byte[10]);
            File.SetLastWriteTimeUtc(dead, DateTime.UtcNow.AddMinutes(-1));
            File.SetLastWriteTimeUtc(deadSidecar, DateTime.UtcNow.AddMinutes(-1));
            var live = Path.Combine(folder, "x.bin~tmp-live");
            await using var writer = new FileStream(live, FileMode.CreateNew, FileAccess.Write, FileShare.Delete);
            File.SetLastWriteTimeUtc(live, DateTime.UtcNow.AddMinutes(-1));
            var other = Path.Combine(folder, "y.bin~tmp-dead");
            await File.WriteAllBytesAsync(other, new byte[10]);
            File.SetLastWriteTimeUtc(other, DateTime.UtcNow.AddMinutes(-1));

            await store.PutAsync("a/x.bin", new MemoryStream([1, 2, 3]), null);

            Assert.False(File.Exists(dead));
            Assert.False(File.Exists(deadSidecar));
            Assert.True(File.Exists(live), "a live write's file is kept");
            Assert.True(File.Exists(other), "another key's leftovers are that key's puts' business");
            Assert.Equal(["x.bin", "x.bin~meta", "x.bin~tmp-live", "y.bin~tmp-dead"], Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
