using Amazon.S3;
using Inbox.Reliability.S3;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Inbox.Reliability;

/// <summary>S3 media storage on <see cref="IInboxReliabilityBuilder"/>.</summary>
public static class S3MediaStoreBuilderExtensions
{
    /// <summary>
    /// Stores media in an S3 bucket (Amazon S3 or an S3-compatible server). Uses the <see cref="IAmazonS3"/> registered in
    /// the services when there is one (configured as the host wants it); otherwise builds a client from the options
    /// (<see cref="S3MediaStoreOptions.ServiceUrl"/>, <see cref="S3MediaStoreOptions.Region"/>, credentials), disposed with
    /// the container. Read URLs are presigned GETs.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="configure">Sets at least <see cref="S3MediaStoreOptions.BucketName"/>.</param>
    /// <returns>The builder.</returns>
    public static IInboxReliabilityBuilder UseS3MediaStore(this IInboxReliabilityBuilder builder, Action<S3MediaStoreOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new S3MediaStoreOptions();
        configure(options);
        builder.Services.AddSingleton<IInboxConfigurationValidator>(new S3MediaStoreOptionsValidator(options));
        return builder.UseMediaStore(new InboxMediaStoreRegistration("S3", "UseS3MediaStore"), sp =>
        {
            var logger = (ILogger?)sp.GetService<ILoggerFactory>()?.CreateLogger("Inbox.Reliability.S3.S3MediaStore") ?? NullLogger.Instance;
            var shared = sp.GetService<IAmazonS3>();
            return shared is not null
                ? new S3MediaStore(options, shared, ownsClient: false, logger)
                : new S3MediaStore(options, S3MediaStore.CreateClient(options), ownsClient: true, logger);
        });
    }

    private sealed class S3MediaStoreOptionsValidator(S3MediaStoreOptions options) : IInboxConfigurationValidator
    {
        public IEnumerable<string> Validate() => options.Validate();
    }
}
