using System.Security.Cryptography;
using System.Text;
using Inbox.Reliability.Events;

namespace Inbox.Reliability.Providers.Internal;

/// <summary>The authenticity checks shared by the adapters. Reasons never contain secrets, signatures or bodies.</summary>
internal static class WebhookAuth
{
    /// <summary>A frozen copy of per-instance secrets.</summary>
    public static IReadOnlyDictionary<string, string> Freeze(IDictionary<string, string> entries) =>
        new Dictionary<string, string>(entries, StringComparer.Ordinal);

    /// <summary>The secret for the instance: the caller's, the instance's, then the default.</summary>
    public static string? Resolve(string? fromRequest, IReadOnlyDictionary<string, string> perInstance, string instance, string? fallback) =>
        fromRequest ?? (perInstance.TryGetValue(instance, out var secret) ? secret : fallback);

    /// <summary>Checks a shared secret sent in the query string or a header.</summary>
    public static WebhookAuthResult SharedSecret(WebhookRequest request, string? secret, string? queryName, string? headerName)
    {
        if (secret is null) return WebhookAuthResult.NotConfigured("no webhook secret is configured for this instance; the webhook is not verified");
        if (string.IsNullOrWhiteSpace(secret)) return WebhookAuthResult.Invalid("the webhook secret configured for this instance is empty");

        var candidates = new List<string>(2);
        if (!string.IsNullOrWhiteSpace(headerName) && request.Headers.TryGetValue(headerName, out var header) && header.Length > 0)
        {
            if (string.Equals(headerName, "Authorization", StringComparison.OrdinalIgnoreCase) && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
                header = header[7..].Trim();
            candidates.Add(header);
        }

        if (!string.IsNullOrWhiteSpace(queryName) && request.Query.TryGetValue(queryName, out var query) && query.Length > 0) candidates.Add(query);
        if (candidates.Count == 0) return WebhookAuthResult.Missing($"the webhook carries no secret ({Where(queryName, headerName)})");

        var match = false;
        foreach (var candidate in candidates) match |= ConstantTime.SecretEquals(candidate, secret);
        return match ? WebhookAuthResult.Ok("webhook secret matches") : WebhookAuthResult.Invalid($"the webhook secret does not match ({Where(queryName, headerName)})");
    }

    /// <summary>Checks a hex HMAC of the raw body.</summary>
    public static WebhookAuthResult Hmac(WebhookRequest request, string key, HashAlgorithmName algorithm, string header, string? prefix)
    {
        if (string.IsNullOrWhiteSpace(key)) return WebhookAuthResult.Invalid($"the key configured for this instance is empty; {header} cannot be verified");
        if (!request.Headers.TryGetValue(header, out var value) || string.IsNullOrWhiteSpace(value)) return WebhookAuthResult.Missing($"the {header} header is missing");
        var hex = value.AsSpan().Trim();
        if (prefix is not null)
        {
            if (!hex.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) return WebhookAuthResult.Invalid($"{header} does not start with \"{prefix}\"");
            hex = hex[prefix.Length..];
        }

        var size = algorithm == HashAlgorithmName.SHA512 ? 64 : 32;
        if (!ConstantTime.IsHex(hex, size)) return WebhookAuthResult.Invalid($"{header} is not {size * 2} hex digits");

        Span<byte> computed = stackalloc byte[size];
        var keyBytes = Encoding.UTF8.GetBytes(key);
        if (algorithm == HashAlgorithmName.SHA512) HMACSHA512.HashData(keyBytes, request.Body.Span, computed);
        else HMACSHA256.HashData(keyBytes, request.Body.Span, computed);
        return ConstantTime.HexEquals(computed, hex)
            ? WebhookAuthResult.Ok($"{header} matches the body")
            : WebhookAuthResult.Invalid($"{header} does not match the body");
    }

    private static string Where(string? queryName, string? headerName) =>
        (string.IsNullOrWhiteSpace(queryName), string.IsNullOrWhiteSpace(headerName)) switch
        {
            (false, false) => $"expected in the \"{queryName}\" query parameter or the {headerName} header",
            (false, true) => $"expected in the \"{queryName}\" query parameter",
            _ => $"expected in the {headerName} header",
        };
}

/// <summary>A frozen copy of <see cref="SharedSecretWebhookOptions"/>, taken when the adapter is created.</summary>
internal sealed class SharedSecretSettings(SharedSecretWebhookOptions options)
{
    private readonly string? _secret = options.WebhookSecret;
    private readonly IReadOnlyDictionary<string, string> _instanceSecrets = WebhookAuth.Freeze(options.InstanceSecrets);
    private readonly string? _queryName = options.SecretQueryName;
    private readonly string? _headerName = options.SecretHeaderName;

    public WebhookAuthResult Authenticate(WebhookRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var secret = WebhookAuth.Resolve(request.Secret, _instanceSecrets, request.Instance, _secret);
        return WebhookAuth.SharedSecret(request, secret, _queryName, _headerName);
    }
}
