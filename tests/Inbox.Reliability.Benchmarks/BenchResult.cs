using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Inbox.Reliability.Benchmarks;

/// <summary>One JSON line: the same field names as the peer scripts in anchors/, plus memory.</summary>
public sealed record BenchResult
{
    [JsonPropertyName("summary")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Summary { get; init; }

    [JsonPropertyName("system")] public string System { get; init; } = "inbox-reliability";
    [JsonPropertyName("version")] public string Version { get; init; } = "0.1.0";
    [JsonPropertyName("storage")] public string Storage { get; init; } = "";
    [JsonPropertyName("mode")] public string Mode { get; init; } = "";
    [JsonPropertyName("concurrency")] public int Concurrency { get; init; }
    [JsonPropertyName("jobs")] public int Jobs { get; init; }
    [JsonPropertyName("single_enqueue_per_s")] public double SingleEnqueuePerS { get; init; }
    [JsonPropertyName("batch_enqueue_per_s")] public double BatchEnqueuePerS { get; init; }
    [JsonPropertyName("process_per_s")] public double ProcessPerS { get; init; }
    [JsonPropertyName("latency_ms_p50")] public double LatencyMsP50 { get; init; }
    [JsonPropertyName("latency_ms_p99")] public double LatencyMsP99 { get; init; }
    [JsonPropertyName("peak_rss_mb")] public double PeakRssMb { get; init; }
    [JsonPropertyName("rss_mb_after")] public double RssMbAfter { get; init; }

    [JsonPropertyName("runs")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Runs { get; init; }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>How every other JSON line (measures, peers' medians, ratios, targets) is written: "&gt;=" stays readable.</summary>
    public static readonly JsonSerializerOptions Output = new() { WriteIndented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static BenchResult? FromJson(string line) => JsonSerializer.Deserialize<BenchResult>(line, Json);

    /// <summary>The median of each numeric field over the runs of one mode.</summary>
    public static BenchResult Median(IReadOnlyList<BenchResult> runs)
    {
        ArgumentOutOfRangeException.ThrowIfZero(runs.Count);
        var first = runs[0];
        return first with
        {
            Summary = "median",
            Concurrency = (int)Math.Round(MedianOf(runs.Select(r => (double)r.Concurrency))),
            Jobs = (int)Math.Round(MedianOf(runs.Select(r => (double)r.Jobs))),
            SingleEnqueuePerS = Math.Round(MedianOf(runs.Select(r => r.SingleEnqueuePerS))),
            BatchEnqueuePerS = Math.Round(MedianOf(runs.Select(r => r.BatchEnqueuePerS))),
            ProcessPerS = Math.Round(MedianOf(runs.Select(r => r.ProcessPerS))),
            LatencyMsP50 = Math.Round(MedianOf(runs.Select(r => r.LatencyMsP50)), 2),
            LatencyMsP99 = Math.Round(MedianOf(runs.Select(r => r.LatencyMsP99)), 2),
            PeakRssMb = Math.Round(MedianOf(runs.Select(r => r.PeakRssMb)), 1),
            RssMbAfter = Math.Round(MedianOf(runs.Select(r => r.RssMbAfter)), 1),
            Runs = runs.Count,
        };
    }

    /// <summary>The median: the middle value, or the mean of the two middle values.</summary>
    public static double MedianOf(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>The same percentile as anchors/graphile-worker.mjs: sorted[min(n-1, floor(p*n))].</summary>
    public static double Percentile(IReadOnlyCollection<double> samples, double p)
    {
        if (samples.Count == 0) return double.NaN;
        var sorted = samples.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Floor(p * sorted.Length))];
    }
}

/// <summary>This process's memory, from /proc/self/status (Linux).</summary>
public static class ProcessMemory
{
    /// <summary>VmHWM: the peak resident set of this process so far, in MB; NaN when unavailable.</summary>
    public static double PeakRssMb() => Read("VmHWM:");

    /// <summary>VmRSS: the resident set now, in MB; NaN when unavailable.</summary>
    public static double RssMb() => Read("VmRSS:");

    private static double Read(string field)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return double.NaN;
        foreach (var line in File.ReadLines(status))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            var parts = line[field.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length > 0 && long.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var kb))
                return Math.Round(kb / 1024.0, 1);
        }

        return double.NaN;
    }
}

/// <summary>
/// The whole machine's busy CPU time (every process and the kernel, all cores) from the first line of /proc/stat: what an
/// open loop cost the machine, load generator and database included.
/// </summary>
public static class MachineCpu
{
    /// <summary>A reading: busy and total CPU time so far, in clock ticks; null when /proc/stat is not there.</summary>
    public static (double Busy, double Total)? Read()
    {
        const string stat = "/proc/stat";
        if (!File.Exists(stat)) return null;
        var fields = File.ReadLines(stat).First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 9 || fields[0] != "cpu") return null;
        double busy = 0, total = 0;
        for (var i = 1; i <= 8; i++)
        {
            var ticks = double.Parse(fields[i], CultureInfo.InvariantCulture);
            total += ticks;
            if (i is not (4 or 5)) busy += ticks; // idle and iowait are not busy
        }

        return (busy, total);
    }

    /// <summary>How busy the machine was between two readings, in percent of all its cores; NaN without readings.</summary>
    public static double BusyPercent((double Busy, double Total)? before, (double Busy, double Total)? after) =>
        before is { } b && after is { } a && a.Total > b.Total ? Math.Round(100 * (a.Busy - b.Busy) / (a.Total - b.Total), 1) : double.NaN;
}
