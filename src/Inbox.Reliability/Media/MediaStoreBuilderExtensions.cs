using Inbox.Reliability.Media;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Inbox.Reliability;

/// <summary>Media storage on <see cref="IInboxReliabilityBuilder"/>.</summary>
public static class MediaStoreBuilderExtensions
{
    /// <summary>
    /// Stores media in a folder: the embedded default, for one host (or several sharing one mounted folder). Writes are
    /// atomic (a temporary file renamed over the key once flushed to disk), the SHA-256 is computed while streaming and
    /// kept with the content type in a small sidecar file. Read URLs are signed links served by
    /// <c>app.MapInboxMedia("/media")</c> (package Inbox.Reliability.AspNetCore); set
    /// <see cref="FileSystemMediaStoreOptions.LinkBaseUrl"/> to use them.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="rootPath">The folder, for example <c>data/media</c> (absolute, or relative to the current directory). Created when missing.</param>
    /// <param name="configure">More settings.</param>
    /// <returns>The builder.</returns>
    public static IInboxReliabilityBuilder UseFileSystemMediaStore(this IInboxReliabilityBuilder builder, string rootPath, Action<FileSystemMediaStoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new FileSystemMediaStoreOptions { RootPath = rootPath ?? "" };
        configure?.Invoke(options);
        builder.Services.AddSingleton<IInboxConfigurationValidator>(new FileSystemMediaStoreOptionsValidator(options));
        builder.Services.TryAddSingleton(sp => new FileSystemMediaStore(options, sp.GetService<TimeProvider>() ?? TimeProvider.System));
        return builder.UseMediaStore(new InboxMediaStoreRegistration("file system", "UseFileSystemMediaStore"), sp => sp.GetRequiredService<FileSystemMediaStore>());
    }

    /// <summary>
    /// For media storage packages: registers <paramref name="store"/> as the <see cref="IMediaStore"/> singleton unless one
    /// is registered already (an <see cref="IMediaStore"/> the host registers itself wins). A second media storage
    /// replaces none: startup then fails and names both, since only one may be configured.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="registration">Which storage, for startup messages.</param>
    /// <param name="store">Creates the store (once).</param>
    /// <returns>The builder.</returns>
    public static IInboxReliabilityBuilder UseMediaStore(this IInboxReliabilityBuilder builder, InboxMediaStoreRegistration registration, Func<IServiceProvider, IMediaStore> store)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(registration);
        ArgumentNullException.ThrowIfNull(store);
        builder.Services.AddSingleton(registration);
        builder.Services.TryAddSingleton<IMediaStore>(store);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IInboxConfigurationValidator, SingleMediaStoreValidator>());
        return builder.AddMediaDownloads();
    }

    private sealed class FileSystemMediaStoreOptionsValidator(FileSystemMediaStoreOptions options) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate() => options.Validate();
    }

    private sealed class SingleMediaStoreValidator(IEnumerable<InboxMediaStoreRegistration> registrations) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate()
        {
            var all = registrations.ToList();
            if (all.Count > 1)
            {
                yield return $"Inbox.Reliability has {all.Count} media stores configured ({string.Join(", ", all.Select(r => r.Method + "()"))}); keep exactly one.";
            }
        }
    }
}

/// <summary>Marks that a media storage was configured, and which one (for startup messages).</summary>
/// <param name="Name">The storage's name, e.g. "S3".</param>
/// <param name="Method">The builder method that registered it, e.g. "UseS3MediaStore".</param>
public sealed record InboxMediaStoreRegistration(string Name, string Method);
