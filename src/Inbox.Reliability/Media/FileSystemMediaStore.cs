using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Inbox.Reliability.Media;

/// <summary>
/// Media in a folder. Layout under the root, for a key <c>a/b/c.jpg</c>:
/// <list type="bullet">
/// <item><description><c>a/b/c.jpg</c>: the bytes, exactly as written;</description></item>
/// <item><description>
/// <c>a/b/c.jpg~meta</c>: a small JSON sidecar, <c>{"v":1,"size":…,"mtime":…,"sha256":"…","contentType":"…"}</c>, so
/// <see cref="GetAsync"/> never reads the file. It is trusted only while its size and modification time (UTC ticks)
/// match the file's; otherwise the object is reported with its size and without type or hash;
/// </description></item>
/// <item><description>
/// <c>a/b/c.jpg~tmp-…</c>, <c>a/b/c.jpg~del-…</c>: a write or a delete in progress (removed by the operation, even
/// when it fails or is canceled; the <c>~tmp-</c> files a killed process left are removed by the next completed put of
/// the same key);
/// </description></item>
/// <item><description><c>~link-signing-key</c> at the root: the generated link-signing key, when none is configured.</description></item>
/// </list>
/// Keys never contain <c>~</c> (<see cref="MediaKeys.Validate"/>), so none of these names can be an object's.
/// A write streams to a temporary file in the target folder, hashing as it goes, flushes it to disk, then renames it over
/// the key: readers see the old object or the new one, never part of one.
/// </summary>
internal sealed class FileSystemMediaStore : IMediaStore
{
    internal const string SidecarSuffix = "~meta";
    internal const string SigningKeyFileName = "~link-signing-key";
    private const string TempMarker = "~tmp-";
    private const string DeleteMarker = "~del-";
    private const int CopyBufferSize = 128 * 1024;
    private const int SidecarVersion = 1;
    private static readonly TimeSpan LeftoverMinimumAge = TimeSpan.FromSeconds(1);

    private readonly string _root;
    private readonly string? _linkBase;
    private readonly string? _configuredSigningKey;
    private readonly TimeProvider _time;
    private readonly Lazy<byte[]> _signingKey;

    public FileSystemMediaStore(FileSystemMediaStoreOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        var errors = options.Validate().ToList();
        if (errors.Count > 0) throw new InvalidOperationException(string.Join(Environment.NewLine, errors));

        _root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.RootPath)) + Path.DirectorySeparatorChar;
        _linkBase = options.LinkBaseUrl?.TrimEnd('/');
        _configuredSigningKey = options.LinkSigningKey;
        _time = time;

        // Loaded (or generated) on first use, not when the container builds the store; a failure is not cached.
        _signingKey = new Lazy<byte[]>(LoadSigningKey, LazyThreadSafetyMode.PublicationOnly);
    }

    /// <summary>The root folder, as a full path ending with a separator.</summary>
    internal string RootFolder => _root;

    public async Task<MediaObject> PutAsync(string key, Stream content, string? contentType, CancellationToken cancellationToken = default)
    {
        MediaKeys.Validate(key);
        ArgumentNullException.ThrowIfNull(content);
        cancellationToken.ThrowIfCancellationRequested();

        var path = ResolvePath(key);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + TempMarker + Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
        var tempSidecar = temp + SidecarSuffix;
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
        FileStream? file = null, sidecar = null;
        try
        {
            // Both temporary files stay open until they are renamed: an open file is a live write, which the leftover
            // sweep of another put of the same key leaves alone (see RemoveLeftovers).
            file = CreateTemporary(temp, bufferSize: 0);
            long size = 0;
            string sha256;
            using (var hasher = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                int read;
                while ((read = await content.ReadAsync(buffer.AsMemory(0, CopyBufferSize), cancellationToken).ConfigureAwait(false)) > 0)
                {
                    hasher.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    size += read;
                }

                sha256 = Convert.ToHexString(hasher.GetHashAndReset()).ToLowerInvariant();
            }

            // On disk before it can be seen under the key.
            file.Flush(flushToDisk: true);
            var modified = File.GetLastWriteTimeUtc(file.SafeFileHandle).Ticks;
            sidecar = CreateTemporary(tempSidecar, bufferSize: 1);
            await sidecar.WriteAsync(WriteSidecar(size, modified, sha256, contentType), cancellationToken).ConfigureAwait(false);

            // The last point where a cancellation leaves nothing behind; past it the write completes.
            cancellationToken.ThrowIfCancellationRequested();
            File.Move(temp, path, overwrite: true);
            File.Move(tempSidecar, path + SidecarSuffix, overwrite: true);
            await file.DisposeAsync().ConfigureAwait(false);
            await sidecar.DisposeAsync().ConfigureAwait(false);
            file = sidecar = null;
            RemoveLeftovers(path);
            return new MediaObject(key, size, contentType, sha256);
        }
        catch
        {
            if (file is not null) await file.DisposeAsync().ConfigureAwait(false);
            if (sidecar is not null) await sidecar.DisposeAsync().ConfigureAwait(false);
            TryDelete(temp);
            TryDelete(tempSidecar);
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public async Task<MediaObject?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        MediaKeys.Validate(key);
        var path = ResolvePath(key);
        var file = new FileInfo(path);
        if (!file.Exists) return null;
        var (contentType, sha256) = await ReadSidecarAsync(path, file.Length, file.LastWriteTimeUtc.Ticks, cancellationToken).ConfigureAwait(false);
        return new MediaObject(key, file.Length, contentType, sha256);
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        MediaKeys.Validate(key);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult<Stream>(OpenFile(ResolvePath(key)) ?? throw NotFound(key));
    }

    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        MediaKeys.Validate(key);
        cancellationToken.ThrowIfCancellationRequested();
        var path = ResolvePath(key);

        // Renamed away first: of two concurrent deletes only one sees the file, and a reader never opens a half-deleted one.
        // A folder of longer keys is no object (rename would move folders too).
        if (Directory.Exists(path)) return Task.FromResult(false);
        var doomed = path + DeleteMarker + Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
        try
        {
            File.Move(path, doomed);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return Task.FromResult(false);
        }

        if (Directory.Exists(doomed))
        {
            // A folder created there meanwhile by a put of a longer key: put it back.
            Directory.Move(doomed, path);
            return Task.FromResult(false);
        }

        TryDelete(path + SidecarSuffix);
        File.Delete(doomed);
        return Task.FromResult(true);
    }

    public Task<Uri> GetReadUrlAsync(string key, TimeSpan expiresIn, CancellationToken cancellationToken = default)
    {
        MediaKeys.Validate(key);
        if (expiresIn <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(expiresIn), expiresIn, "A read URL must expire in the future.");
        if (_linkBase is null)
        {
            throw new InvalidOperationException(
                "UseFileSystemMediaStore: read URLs need LinkBaseUrl, the absolute URL where app.MapInboxMedia() is mapped, " +
                "for example UseFileSystemMediaStore(\"data/media\", o => o.LinkBaseUrl = \"https://api.example.com/media\").");
        }

        var expires = _time.GetUtcNow() + expiresIn;
        var exp = (expires.ToUnixTimeMilliseconds() + 999) / 1000; // rounded up to the second
        var url = string.Create(CultureInfo.InvariantCulture, $"{_linkBase}/{key}?exp={exp}&sig={Sign(key, exp)}");
        return Task.FromResult(new Uri(url, UriKind.Absolute));
    }

    /// <summary>Checks a signed link's <c>exp</c> and <c>sig</c> for a key, in constant time.</summary>
    internal MediaLinkCheck CheckLink(string key, string? exp, string? sig, DateTimeOffset now)
    {
        try
        {
            MediaKeys.Validate(key);
        }
        catch (ArgumentException)
        {
            return MediaLinkCheck.Invalid;
        }

        if (string.IsNullOrEmpty(exp) || exp.Length > 19 || !exp.All(char.IsAsciiDigit) ||
            !long.TryParse(exp, NumberStyles.None, CultureInfo.InvariantCulture, out var expires) || string.IsNullOrEmpty(sig))
        {
            return MediaLinkCheck.Invalid;
        }

        var given = Base64Url.TryDecode(sig);
        var expected = ComputeSignature(key, expires);
        if (given is null || !CryptographicOperations.FixedTimeEquals(given, expected)) return MediaLinkCheck.Invalid;
        return now.ToUnixTimeSeconds() >= expires ? MediaLinkCheck.Expired : MediaLinkCheck.Valid;
    }

    /// <summary>
    /// Creates a temporary file of a put. It is shared for deletion (so it can be renamed while open, on Windows too); on
    /// Unix the share mode takes a shared advisory lock (<c>flock</c>) on it, held while it is open.
    /// </summary>
    private static FileStream CreateTemporary(string path, int bufferSize) => new(path, new FileStreamOptions
    {
        Mode = FileMode.CreateNew,
        Access = FileAccess.Write,
        Share = FileShare.Delete,
        Options = FileOptions.Asynchronous,
        BufferSize = bufferSize,
    });

    /// <summary>
    /// Removes what interrupted writes of the same key left (a process killed mid-upload), once a put of the key has
    /// completed. A temporary file is removed only when nobody has it open: opening it exclusively fails while its writer
    /// is alive (a sharing violation on Windows, the writer's lock on Unix), so a concurrent put of the same key keeps its
    /// file. Files changed in the last second are left alone too (a writer may not hold its lock yet). Best effort: on a
    /// file system without locks (NFS, SMB) this relies on that age alone.
    /// </summary>
    private static void RemoveLeftovers(string path)
    {
        try
        {
            foreach (var leftover in Directory.EnumerateFiles(Path.GetDirectoryName(path)!, Path.GetFileName(path) + TempMarker + "*"))
            {
                try
                {
                    if (DateTime.UtcNow - File.GetLastWriteTimeUtc(leftover) < LeftoverMinimumAge) continue;
                    using (new FileStream(leftover, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                    {
                    }

                    File.Delete(leftover);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // In use by a live write, or already gone.
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: a leftover only takes space.
        }
    }

    /// <summary>Opens an object with what the sidecar says about it, checked against the open file; null when missing.</summary>
    internal async Task<MediaFile?> OpenWithInfoAsync(string key, CancellationToken cancellationToken)
    {
        MediaKeys.Validate(key);
        var path = ResolvePath(key);
        var stream = OpenFile(path);
        if (stream is null) return null;
        try
        {
            // Length and time of the file actually open, so a concurrent replace cannot pair it with another's sidecar.
            var modified = File.GetLastWriteTimeUtc(stream.SafeFileHandle);
            var (contentType, sha256) = await ReadSidecarAsync(path, stream.Length, modified.Ticks, cancellationToken).ConfigureAwait(false);
            return new MediaFile(stream, stream.Length, contentType, sha256, new DateTimeOffset(modified, TimeSpan.Zero));
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The full path of a key, checked to be inside the root.</summary>
    internal string ResolvePath(string key)
    {
        var full = Path.GetFullPath(Path.Combine(_root, key.Replace('/', Path.DirectorySeparatorChar)));
        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        if (full.Length <= _root.Length || !full.StartsWith(_root, comparison))
        {
            throw new ArgumentException("The media key resolves outside the store's root folder.", nameof(key));
        }

        return full;
    }

    private string Sign(string key, long exp) => Base64Url.Encode(ComputeSignature(key, exp));

    private byte[] ComputeSignature(string key, long exp)
    {
        var message = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{key}\n{exp}"));
        return HMACSHA256.HashData(_signingKey.Value, message);
    }

    private byte[] LoadSigningKey()
    {
        if (_configuredSigningKey is not null) return Encoding.UTF8.GetBytes(_configuredSigningKey);

        var path = _root + SigningKeyFileName;
        if (ReadKeyFile(path) is { } existing) return existing;

        Directory.CreateDirectory(_root);
        var temp = path + TempMarker + Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var file = new FileStream(temp, options))
            {
                file.Write(Encoding.ASCII.GetBytes(Base64Url.Encode(RandomNumberGenerator.GetBytes(32))));
                file.Flush(flushToDisk: true);
            }

            // Another process may have created it meanwhile: theirs wins, so both sign with the same key.
            try
            {
                File.Move(temp, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
            }
        }
        finally
        {
            TryDelete(temp);
        }

        return ReadKeyFile(path) ?? throw new InvalidOperationException($"UseFileSystemMediaStore: the link-signing key file {path} could not be created.");
    }

    private static byte[]? ReadKeyFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }

        if (text.Length < FileSystemMediaStoreOptions.MinLinkSigningKeyLength)
        {
            throw new InvalidOperationException(
                $"UseFileSystemMediaStore: the link-signing key file {path} holds fewer than {FileSystemMediaStoreOptions.MinLinkSigningKeyLength} characters. " +
                "Delete it to have a new key generated (links handed out before stop working), or set LinkSigningKey.");
        }

        return Encoding.UTF8.GetBytes(text);
    }

    private static FileStream? OpenFile(string path)
    {
        try
        {
            return new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,

                // A concurrent replace (rename over it) or delete does not disturb a reader: it keeps the file it opened.
                Share = FileShare.ReadWrite | FileShare.Delete,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            });
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException ||
                                   (ex is UnauthorizedAccessException && Directory.Exists(path)))
        {
            // A folder (of longer keys) is no object either.
            return null;
        }
    }

    private static MediaObjectNotFoundException NotFound(string key) => new($"There is no media object under the key \"{key}\".");

    private static byte[] WriteSidecar(long size, long modifiedTicks, string sha256, string? contentType)
    {
        using var output = new MemoryStream(256);
        using (var json = new Utf8JsonWriter(output))
        {
            json.WriteStartObject();
            json.WriteNumber("v", SidecarVersion);
            json.WriteNumber("size", size);
            json.WriteNumber("mtime", modifiedTicks);
            json.WriteString("sha256", sha256);
            if (contentType is null) json.WriteNull("contentType");
            else json.WriteString("contentType", contentType);
            json.WriteEndObject();
        }

        return output.ToArray();
    }

    private static async Task<(string? ContentType, string? Sha256)> ReadSidecarAsync(string path, long size, long modifiedTicks, CancellationToken cancellationToken)
    {
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(path + SidecarSuffix, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return (null, null);
        }

        try
        {
            using var json = JsonDocument.Parse(bytes);
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object ||
                !root.TryGetProperty("v", out var version) || version.ValueKind != JsonValueKind.Number || version.GetInt32() != SidecarVersion ||
                !root.TryGetProperty("size", out var recordedSize) || recordedSize.ValueKind != JsonValueKind.Number || recordedSize.GetInt64() != size ||
                !root.TryGetProperty("mtime", out var recordedTime) || recordedTime.ValueKind != JsonValueKind.Number || recordedTime.GetInt64() != modifiedTicks)
            {
                // Another write's sidecar (a replace in progress, a crash between the two renames): nothing trustworthy.
                return (null, null);
            }

            var sha256 = root.TryGetProperty("sha256", out var hash) && hash.ValueKind == JsonValueKind.String ? hash.GetString() : null;
            var contentType = root.TryGetProperty("contentType", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null;
            return (contentType, sha256);
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
        {
            return (null, null);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: a leftover temporary name is never read as an object.
        }
    }
}

/// <summary>The outcome of checking a signed media link.</summary>
internal enum MediaLinkCheck
{
    /// <summary>Signed by this store and not expired.</summary>
    Valid,

    /// <summary>Missing, malformed or wrong signature, or a key that is not valid.</summary>
    Invalid,

    /// <summary>Correctly signed, but past its expiry.</summary>
    Expired,
}

/// <summary>An open media file with its recorded type and hash (null when unknown).</summary>
internal sealed record MediaFile(FileStream Stream, long Length, string? ContentType, string? Sha256, DateTimeOffset LastModified);

/// <summary>Base64url without padding (RFC 4648 §5), for both target frameworks.</summary>
internal static class Base64Url
{
    public static string Encode(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Decodes base64url (padding optional); null when it is not valid.</summary>
    public static byte[]? TryDecode(string text)
    {
        if (text.Length is 0 or > 256) return null;
        var builder = new StringBuilder(text.Length + 3);
        foreach (var c in text)
        {
            if (c == '-') builder.Append('+');
            else if (c == '_') builder.Append('/');
            else if (char.IsAsciiLetterOrDigit(c) || c == '=') builder.Append(c);
            else return null;
        }

        while (builder.Length % 4 != 0) builder.Append('=');
        var result = new byte[builder.Length / 4 * 3];
        return Convert.TryFromBase64String(builder.ToString(), result, out var written) ? result[..written] : null;
    }
}
