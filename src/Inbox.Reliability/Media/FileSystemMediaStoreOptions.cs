namespace Inbox.Reliability.Media;

/// <summary>
/// Settings of the file-system media store. Set through <c>UseFileSystemMediaStore(rootPath, o => ...)</c>; checked at
/// startup together with the rest of the configuration.
/// </summary>
public sealed class FileSystemMediaStoreOptions
{
    /// <summary>The minimum length of <see cref="LinkSigningKey"/>, in characters.</summary>
    public const int MinLinkSigningKeyLength = 32;

    /// <summary>
    /// The folder objects are stored under, absolute or relative to the current directory. Default <c>data/media</c>.
    /// Created when missing.
    /// </summary>
    public string RootPath { get; set; } = "data/media";

    /// <summary>
    /// The absolute URL where <c>app.MapInboxMedia()</c> is mapped, as clients reach it, for example
    /// <c>https://api.example.com/media</c>. Read URLs are <c>{LinkBaseUrl}/{key}?exp=…&amp;sig=…</c>. Required for
    /// <c>GetReadUrlAsync</c>; the rest of the store works without it.
    /// </summary>
    public string? LinkBaseUrl { get; set; }

    /// <summary>
    /// The secret that signs read URLs (HMAC-SHA-256 over its UTF-8 bytes), at least
    /// <see cref="MinLinkSigningKeyLength"/> characters. Give the same value to every process that serves the same
    /// folder. When not set, a random key is generated on first use and kept in the root folder (in
    /// <c>~link-signing-key</c>), so links stay valid across restarts; deleting that file invalidates every link
    /// handed out.
    /// </summary>
    public string? LinkSigningKey { get; set; }

    internal IEnumerable<string> Validate()
    {
        const string method = "UseFileSystemMediaStore";
        if (string.IsNullOrWhiteSpace(RootPath))
        {
            yield return $"{method}: a root folder is required, for example UseFileSystemMediaStore(\"data/media\").";
        }
        else
        {
            string? error = null;
            try
            {
                _ = Path.GetFullPath(RootPath);
            }
            catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
            {
                error = $"{method}: the root folder \"{RootPath}\" is not a valid path ({ex.Message}).";
            }

            if (error is not null) yield return error;
        }

        if (LinkBaseUrl is not null)
        {
            if (!Uri.TryCreate(LinkBaseUrl, UriKind.Absolute, out var link) || (link.Scheme != Uri.UriSchemeHttp && link.Scheme != Uri.UriSchemeHttps))
            {
                yield return $"{method}: LinkBaseUrl must be an absolute http or https URL, the address where app.MapInboxMedia() is mapped, for example \"https://api.example.com/media\" (was \"{LinkBaseUrl}\").";
            }
            else if (link.Query.Length > 0 || link.Fragment.Length > 0)
            {
                yield return $"{method}: LinkBaseUrl must not have a query string or a fragment (was \"{LinkBaseUrl}\"); give the path where app.MapInboxMedia() is mapped.";
            }
        }

        if (LinkSigningKey is not null && LinkSigningKey.Length < MinLinkSigningKeyLength)
        {
            // Never the key itself: only its length.
            yield return $"{method}: LinkSigningKey must have at least {MinLinkSigningKeyLength} characters (it has {LinkSigningKey.Length}); leave it unset to have a random key generated and kept in the root folder.";
        }
    }
}
