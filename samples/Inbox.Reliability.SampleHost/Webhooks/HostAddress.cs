using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;

namespace Inbox.Reliability.SampleHost.Webhooks;

/// <summary>
/// Where the sample listens, and the base of the media links it hands out: the file-system media store signs links under
/// <c>LinkBaseUrl</c>, which must be where <c>MapInboxMedia</c> is reachable, so both are settled before the host is built.
/// </summary>
/// <param name="Urls">The URLs Kestrel listens on (<c>;</c>-separated), with a real port instead of 0.</param>
/// <param name="LinkBaseUrl">The absolute URL of the media endpoint, for <c>FileSystemMediaStoreOptions.LinkBaseUrl</c>.</param>
public sealed record HostAddress(string Urls, string LinkBaseUrl)
{
    /// <summary>The default address (no <c>--urls</c>, no <c>ASPNETCORE_URLS</c>).</summary>
    public const string DefaultUrls = "http://127.0.0.1:5080";

    /// <summary>
    /// The listen URLs: <c>--urls</c> or <c>ASPNETCORE_URLS</c> when given, else <see cref="DefaultUrls"/>; for
    /// <c>--replay</c> a free port of 127.0.0.1. A port 0 is replaced by a free port picked now, so the media links can name
    /// it. The link base is <paramref name="linkBaseUrl"/> when given (a host behind a proxy), else the first URL with
    /// <paramref name="mediaPath"/>, a wildcard host (<c>0.0.0.0</c>, <c>*</c>, <c>+</c>, <c>[::]</c>) read as <c>localhost</c>.
    /// </summary>
    public static HostAddress Resolve(bool replay, IConfiguration configuration, string mediaPath, string? linkBaseUrl)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var configured = replay ? "http://127.0.0.1:0" : configuration["urls"] is { Length: > 0 } urls ? urls : DefaultUrls;
        var list = configured.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        var first = BindingAddress.Parse(list[0]);
        var port = first.Port;
        if (port == 0)
        {
            port = FreePort(first.Host);
            list[0] = $"{first.Scheme}://{first.Host}:{port}";
        }

        var host = first.Host is "*" or "+" or "0.0.0.0" or "[::]" ? "localhost" : first.Host;
        var link = linkBaseUrl?.TrimEnd('/') ?? $"{first.Scheme}://{host}:{port}{mediaPath}";
        return new HostAddress(string.Join(';', list), link);
    }

    /// <summary>A port nobody listens on now (Kestrel binds it a moment later).</summary>
    private static int FreePort(string host)
    {
        var address = IPAddress.TryParse(host.Trim('[', ']'), out var ip) ? ip : IPAddress.Loopback;
        using var listener = new TcpListener(address, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
