namespace Inbox.Reliability.Providers.Media;

/// <summary>The media timeouts every provider's options carry.</summary>
internal interface IMediaHttpOptions
{
    /// <summary>How long one request may wait for the response headers.</summary>
    TimeSpan MediaRequestTimeout { get; }

    /// <summary>How long a body may go without a byte.</summary>
    TimeSpan MediaReadIdleTimeout { get; }
}

/// <summary>Defaults and checks shared by the providers' media settings.</summary>
internal static class MediaHttpDefaults
{
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(60);

    public static readonly TimeSpan ReadIdleTimeout = TimeSpan.FromSeconds(60);

    // CancellationTokenSource.CancelAfter takes at most int.MaxValue milliseconds.
    private static readonly TimeSpan MaxTimeout = TimeSpan.FromMilliseconds(int.MaxValue);

    public static IEnumerable<string> Validate(string method, IMediaHttpOptions options)
    {
        if (options.MediaRequestTimeout <= TimeSpan.Zero || options.MediaRequestTimeout > MaxTimeout)
            yield return $"{method}: MediaRequestTimeout must be positive and at most 24 days (was {options.MediaRequestTimeout}).";
        if (options.MediaReadIdleTimeout <= TimeSpan.Zero || options.MediaReadIdleTimeout > MaxTimeout)
            yield return $"{method}: MediaReadIdleTimeout must be positive and at most 24 days (was {options.MediaReadIdleTimeout}).";
    }

    public static IEnumerable<string> ValidateUrl(string method, string name, Uri? url, bool required)
    {
        if (url is null)
        {
            if (required) yield return $"{method}: {name} is required.";
        }
        else if (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttps && url.Scheme != Uri.UriSchemeHttp))
        {
            yield return $"{method}: {name} must be an absolute http or https URL.";
        }
        else if (!string.IsNullOrEmpty(url.Query) || !string.IsNullOrEmpty(url.UserInfo))
        {
            yield return $"{method}: {name} must not have a query string or user info.";
        }
    }

    /// <summary>The setting for an instance: its own entry, else the shared one.</summary>
    public static string? ForInstance(IDictionary<string, string> perInstance, string? shared, string instance) =>
        perInstance.TryGetValue(instance, out var own) && !string.IsNullOrWhiteSpace(own) ? own : string.IsNullOrWhiteSpace(shared) ? null : shared;
}
