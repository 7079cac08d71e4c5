using System.Globalization;
using System.Text.Json;
using Inbox.Reliability.Jobs;

namespace Inbox.Reliability.TestHost;

/// <summary>
/// The "log" workload: appends "jobId attempt key seq" to the handler log (key "-" when the job has none; seq from
/// the payload's "seq" property, -1 when absent), then simulates a little work.
/// </summary>
public sealed class LogWorkloadHandler(HandlerLog log, TestHostArguments arguments) : IJobHandler
{
    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        var marker = arguments.RunningDir is not null && job.Key is not null ? Path.Combine(arguments.RunningDir, job.Key) : null;
        if (marker is not null) Hold(marker, job);
        try
        {
            log.Append(string.Create(CultureInfo.InvariantCulture, $"{job.Id} {job.Attempt} {job.Key ?? "-"} {ReadSeq(job.Payload)}"));
            if (arguments.Work > TimeSpan.Zero) await Task.Delay(arguments.Work, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (marker is not null) File.Delete(marker);
        }
    }

    /// <summary>Creates the key's marker; it exists only while a handler of that key runs, in any process (O_EXCL).</summary>
    private void Hold(string marker, JobContext job)
    {
        try
        {
            using var created = new FileStream(marker, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        }
        catch (IOException)
        {
            File.AppendAllText(Path.Combine(arguments.RunningDir!, "overlaps.log"), string.Create(CultureInfo.InvariantCulture, $"{job.Id} {job.Key}\n"));
        }
    }

    private static long ReadSeq(string payload)
    {
        try
        {
            using var document = JsonDocument.Parse(payload);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("seq", out var seq) && seq.TryGetInt64(out var value)
                ? value
                : -1;
        }
        catch (JsonException)
        {
            return -1;
        }
    }
}
