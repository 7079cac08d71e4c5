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
        log.Append(string.Create(CultureInfo.InvariantCulture, $"{job.Id} {job.Attempt} {job.Key ?? "-"} {ReadSeq(job.Payload)}"));
        if (arguments.Work > TimeSpan.Zero) await Task.Delay(arguments.Work, cancellationToken).ConfigureAwait(false);
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
