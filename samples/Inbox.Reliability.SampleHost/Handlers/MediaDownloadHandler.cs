using System.Net;
using Inbox.Reliability.Jobs;

namespace Inbox.Reliability.SampleHost.Handlers;

/// <summary>A media attachment to download.</summary>
/// <param name="Run">The demo run that enqueued it.</param>
/// <param name="MediaId">The provider's media id.</param>
/// <param name="MimeType">The media's type.</param>
/// <param name="Simulate">Demo only: how the job should misbehave.</param>
public sealed record MediaDownloadPayload(string Run, string MediaId, string MimeType, Simulation? Simulate = null);

/// <summary>
/// Downloads a media attachment. Shows the two ways a job ends up dead-lettered:
/// <list type="bullet">
/// <item>it throws <see cref="FatalJobException"/> (the media URL expired: retrying cannot help), so it fails at once;</item>
/// <item>it keeps failing (the CDN is unreachable), so it fails for good after the queue's MaxAttempts.</item>
/// </list>
/// Dead-lettered jobs keep their last error and attempt history until they are requeued or purged.
/// </summary>
public sealed class MediaDownloadHandler : IJobHandler
{
    /// <inheritdoc />
    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var media = job.GetPayload<MediaDownloadPayload>(SampleJson.Options) ?? throw new FatalJobException("The media payload is empty.");

        await Task.Delay(Random.Shared.Next(10, 40), cancellationToken); // the download

        if (media.Simulate?.Fatal == true)
        {
            throw new FatalJobException($"Media {media.MediaId} is gone: its URL answered 404 Not Found (simulated). Retrying cannot help.");
        }

        if (media.Simulate?.FailsOn(job.Attempt) == true)
        {
            throw new HttpRequestException(
                $"The media CDN is unreachable for {media.MediaId} (simulated, attempt {job.Attempt} of {job.MaxAttempts}).", null, HttpStatusCode.BadGateway);
        }
    }
}
