using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Inbox.Reliability.Media;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the endpoint that serves the file-system media store's signed read links.</summary>
public static class InboxMediaEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps <c>GET {pattern}/{**key}?exp=…&amp;sig=…</c> (and <c>HEAD</c>): the read URLs that
    /// <see cref="IMediaStore.GetReadUrlAsync"/> hands out for the file-system media store. It checks the signature in
    /// constant time and the expiry against the host's <see cref="TimeProvider"/>, then streams the file with its content
    /// type, <c>Content-Length</c>, <c>Last-Modified</c>, an <c>ETag</c> (the SHA-256, when known) and range support
    /// (206 for <c>Range</c> requests). Answers 403 for a missing, wrong or expired signature, 404 for a valid link to an
    /// object that no longer exists. Responses carry <c>X-Content-Type-Options: nosniff</c> and
    /// <c>Content-Security-Policy: sandbox</c>, since the bytes come from outside.
    /// Set <see cref="FileSystemMediaStoreOptions.LinkBaseUrl"/> to the absolute URL of <paramref name="pattern"/>.
    /// </summary>
    /// <param name="endpoints">The app or a route group.</param>
    /// <param name="pattern">The path the links live under, for example <c>/media</c>.</param>
    /// <returns>A builder for the endpoint, to add rate limiting, host filtering and so on.</returns>
    /// <exception cref="InvalidOperationException">The file-system media store is not registered in the services.</exception>
    public static IEndpointConventionBuilder MapInboxMedia(this IEndpointRouteBuilder endpoints, [StringSyntax("Route")] string pattern = "/media")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(pattern);
        var services = endpoints.ServiceProvider;
        var isService = services.GetService<IServiceProviderIsService>();
        if (isService is not null ? !isService.IsService(typeof(FileSystemMediaStore)) : services.GetService<FileSystemMediaStore>() is null)
        {
            throw new InvalidOperationException(
                "MapInboxMedia serves the file-system media store, which is not registered. Add it with " +
                "services.AddInboxReliability().UseFileSystemMediaStore(\"data/media\", o => o.LinkBaseUrl = \"https://api.example.com/media\"). " +
                "Other media stores (S3) hand out their own read URLs and need no endpoint.");
        }

        var endpoint = new MediaEndpoint(services);
        RequestDelegate handle = endpoint.HandleAsync;
        return endpoints.MapMethods(pattern.TrimEnd('/') + "/{**key}", MediaEndpoint.Methods, handle).WithDisplayName("Inbox media download");
    }
}

/// <summary>
/// Serves one signed media link. Checks the signature before touching the file system, so an unsigned request learns
/// nothing about which keys exist.
/// </summary>
internal sealed class MediaEndpoint
{
    public static readonly string[] Methods = ["GET", "HEAD"];
    private const string DefaultContentType = "application/octet-stream";

    private readonly IServiceProvider _services;
    private readonly Lazy<(FileSystemMediaStore Store, TimeProvider Time)> _dependencies;

    public MediaEndpoint(IServiceProvider services)
    {
        _services = services;

        // Resolved on the first request, not when mapping; not cached when it throws.
        _dependencies = new Lazy<(FileSystemMediaStore, TimeProvider)>(
            () => (_services.GetRequiredService<FileSystemMediaStore>(), _services.GetService<TimeProvider>() ?? TimeProvider.System),
            LazyThreadSafetyMode.PublicationOnly);
    }

    public async Task HandleAsync(HttpContext context)
    {
        var (store, time) = _dependencies.Value;
        var key = context.Request.RouteValues["key"] as string ?? "";
        var exp = Single(context.Request.Query["exp"]);
        var sig = Single(context.Request.Query["sig"]);
        var now = time.GetUtcNow();
        switch (store.CheckLink(key, exp, sig, now))
        {
            case MediaLinkCheck.Invalid:
                await WriteErrorAsync(context, StatusCodes.Status403Forbidden, "The link is not valid.").ConfigureAwait(false);
                return;
            case MediaLinkCheck.Expired:
                await WriteErrorAsync(context, StatusCodes.Status403Forbidden, "The link has expired.").ConfigureAwait(false);
                return;
        }

        var file = await store.OpenWithInfoAsync(key, context.RequestAborted).ConfigureAwait(false);
        if (file is null)
        {
            await WriteErrorAsync(context, StatusCodes.Status404NotFound, "There is no media under this link.").ConfigureAwait(false);
            return;
        }

        await using (file.Stream.ConfigureAwait(false))
        {
            var headers = context.Response.Headers;
            headers.XContentTypeOptions = "nosniff";
            headers.ContentSecurityPolicy = "sandbox";

            // Cacheable by the client until the link expires, never by shared caches.
            var remaining = Math.Max(0, long.Parse(exp!, CultureInfo.InvariantCulture) - now.ToUnixTimeSeconds());
            headers.CacheControl = string.Create(CultureInfo.InvariantCulture, $"private, max-age={remaining}");
            var etag = file.Sha256 is null ? null : new EntityTagHeaderValue("\"" + file.Sha256 + "\"");
            var result = TypedResults.Stream(file.Stream, file.ContentType ?? DefaultContentType, lastModified: file.LastModified, entityTag: etag, enableRangeProcessing: true);
            await result.ExecuteAsync(context).ConfigureAwait(false);
        }
    }

    private static string? Single(StringValues values) => values.Count == 1 ? values[0] : null;

    private static Task WriteErrorAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.Headers.CacheControl = "no-store";
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(message, context.RequestAborted);
    }
}
