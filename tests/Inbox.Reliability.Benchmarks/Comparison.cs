using System.Text.Json.Nodes;

namespace Inbox.Reliability.Benchmarks;

/// <summary>
/// The ratios ours/peer, field by field, and the targets of the issue "PostgreSQL storage: ... faster than graphile-worker and
/// pg-boss on the same database", all from the figures of one invocation (medians over --runs).
/// </summary>
public static class Comparison
{
    public const string Note = "ratios are ours/peer from this invocation (medians over --runs); higher is better, except latency ratios (latency_ms_*), where lower is better";

    private static readonly string[] Fields = ["single_enqueue_per_s", "batch_enqueue_per_s", "process_per_s", "latency_ms_p50", "latency_ms_p99"];

    private const string GraphileDefault = "graphile-worker-default";
    private const string GraphileBatched = "graphile-worker-batched";
    private const string PgBossBatched = "pg-boss-batched";
    private const string Pgbench = "pgbench-single-row-insert";

    /// <summary>One line per (our mode, peer): the ratio of each field; then ours against pgbench's insert ceiling; then keyed/default.</summary>
    public static IEnumerable<JsonObject> Ratios(IReadOnlyDictionary<string, BenchResult> ours, IReadOnlyDictionary<string, JsonObject> peers)
    {
        foreach (var (mode, result) in ours)
        {
            var mine = Values(result);
            foreach (var (peer, line) in peers)
            {
                if (peer == Pgbench) continue;
                var ratio = new JsonObject { ["ratio"] = "inbox-reliability/" + peer, ["mode"] = mode };
                foreach (var field in Fields) ratio[field] = Ratio(mine.GetValueOrDefault(field), Number(line, field));
                yield return ratio;
            }

            if (peers.TryGetValue(Pgbench, out var pgbench))
            {
                var ceiling = Number(pgbench, "inserts_per_s");
                yield return new JsonObject
                {
                    ["ratio"] = "inbox-reliability/" + Pgbench,
                    ["mode"] = mode,
                    ["single_enqueue_per_s"] = Ratio(result.SingleEnqueuePerS, ceiling),
                    ["batch_enqueue_per_s"] = Ratio(result.BatchEnqueuePerS, ceiling),
                };
            }
        }

        if (ours.TryGetValue(BenchModes.Keyed, out var keyed) && ours.TryGetValue(BenchModes.Default, out var unkeyed))
        {
            var k = Values(keyed);
            var d = Values(unkeyed);
            var ratio = new JsonObject { ["ratio"] = "keyed/default" };
            foreach (var field in Fields) ratio[field] = Ratio(k[field], d[field]);
            yield return ratio;
        }
    }

    /// <summary>The targets line: each target of the issue with the measured values and whether it is met.</summary>
    public static JsonObject Targets(
        IReadOnlyDictionary<string, BenchResult> ours,
        IReadOnlyDictionary<string, JsonObject> peers,
        IReadOnlyList<JsonObject> claims,
        JsonObject? idle)
    {
        ours.TryGetValue(BenchModes.Default, out var mine);
        ours.TryGetValue(BenchModes.Keyed, out var keyed);
        peers.TryGetValue(GraphileBatched, out var graphileBatched);
        peers.TryGetValue(PgBossBatched, out var pgBossBatched);
        var graphile = new[] { GraphileDefault, GraphileBatched }.Where(peers.ContainsKey).Select(n => (Name: n, Line: peers[n])).ToArray();

        var targets = new JsonObject { ["note"] = Note };

        targets["burn_down_vs_graphile_worker_batched"] = AtLeast(1.5, mine?.ProcessPerS, Number(graphileBatched, "process_per_s"), GraphileBatched);
        targets["burn_down_vs_pg_boss_batched"] = AtLeast(5, mine?.ProcessPerS, Number(pgBossBatched, "process_per_s"), PgBossBatched);

        // Single and batch enqueue do not depend on graphile-worker's mode: compare with its better run of the two.
        var bestSingle = graphile.OrderByDescending(g => Number(g.Line, "single_enqueue_per_s") ?? double.MinValue).FirstOrDefault();
        targets["single_enqueue_vs_graphile_worker"] = AtLeast(2, mine?.SingleEnqueuePerS, Number(bestSingle.Line, "single_enqueue_per_s"), bestSingle.Name, "the better of graphile-worker's two modes; 8 concurrent callers");
        var bestBatch = graphile.OrderByDescending(g => Number(g.Line, "batch_enqueue_per_s") ?? double.MinValue).FirstOrDefault();
        targets["batch_enqueue_vs_graphile_worker"] = AtLeast(1, mine?.BatchEnqueuePerS, Number(bestBatch.Line, "batch_enqueue_per_s"), bestBatch.Name, "the better of graphile-worker's two modes");

        var bestLatency = graphile.OrderBy(g => Number(g.Line, "latency_ms_p50") ?? double.MaxValue).FirstOrDefault();
        var peerP50 = Number(bestLatency.Line, "latency_ms_p50");
        targets["latency_p50_vs_graphile_worker"] = new JsonObject
        {
            ["target"] = "ours <= peer (ratio <= 1; lower is better)",
            ["peer"] = bestLatency.Name,
            ["peer_note"] = "the lower p50 of graphile-worker's two modes (its latencies are whole milliseconds)",
            ["ours_ms"] = Json(mine?.LatencyMsP50),
            ["peer_ms"] = Json(peerP50),
            ["ratio"] = Ratio(mine?.LatencyMsP50, peerP50),
            ["met"] = mine is not null && peerP50 is not null && mine.LatencyMsP50 <= peerP50,
        };
        targets["latency_p99_ms"] = new JsonObject
        {
            ["target"] = "<= 10 (lower is better)",
            ["value"] = Json(mine?.LatencyMsP99),
            ["met"] = mine is not null && mine.LatencyMsP99 <= 10,
        };
        if (ours.TryGetValue(BenchModes.Removed, out var removed))
        {
            // Not one of the targets (those take the default mode, which keeps completed jobs for retention): the same
            // burn-down with graphile-worker's own semantics, completed jobs deleted.
            var entry = AtLeast(1.5, removed.ProcessPerS, Number(graphileBatched, "process_per_s"), GraphileBatched);
            entry["mode"] = BenchModes.Removed;
            entry["about"] = "ours with RemoveOnComplete (completed jobs deleted, as graphile-worker does): for information; the target is burn_down_vs_graphile_worker_batched";
            targets["info_burn_down_remove_on_complete_vs_graphile_worker_batched"] = entry;
        }

        targets["keyed_vs_unkeyed_burn_down"] = new JsonObject
        {
            ["target"] = ">= 0.5",
            ["keyed_per_s"] = Json(keyed?.ProcessPerS),
            ["default_per_s"] = Json(mine?.ProcessPerS),
            ["ratio"] = Ratio(keyed?.ProcessPerS, mine?.ProcessPerS),
            ["met"] = keyed is not null && mine is not null && keyed.ProcessPerS >= 0.5 * mine.ProcessPerS,
        };

        var sized = claims.Select(c => (Queued: Number(c, "queued"), P50: Number(c, "claim_ms_p50"), P99: Number(c, "claim_ms_p99")))
            .Where(c => c.Queued is not null && c.P50 is not null).OrderBy(c => c.Queued).ToArray();
        var flat = new JsonObject { ["target"] = "claim p50 at the largest queue depth <= 2 x p50 at the smallest (lower is better)" };
        if (sized.Length >= 2)
        {
            var (small, large) = (sized[0], sized[^1]);
            flat["small_queued"] = Json(small.Queued);
            flat["small_claim_ms_p50"] = Json(small.P50);
            flat["small_claim_ms_p99"] = Json(small.P99);
            flat["large_queued"] = Json(large.Queued);
            flat["large_claim_ms_p50"] = Json(large.P50);
            flat["large_claim_ms_p99"] = Json(large.P99);
            flat["ratio"] = Ratio(large.P50, small.P50);
            flat["met"] = large.P50 <= 2 * small.P50;
        }
        else
        {
            flat["note"] = "not measured (needs two --claim-sizes)";
            flat["met"] = false;
        }

        targets["claim_time_flat"] = flat;

        var idleRate = Number(idle, "queries_per_s");
        targets["idle_queries_per_s"] = new JsonObject
        {
            ["target"] = "<= 1 (lower is better)",
            ["value"] = Json(idleRate),
            ["met"] = idleRate is not null && idleRate <= 1,
        };

        return new JsonObject { ["targets"] = targets };
    }

    /// <summary>The capture targets of the webhook issue: ack p99 <= 20 ms at 2,000/s offered, end-to-end p50 <= 20 ms.</summary>
    public static JsonObject CaptureTargets(JsonObject? capture, string? note = null)
    {
        var ackP99 = Number(capture, "ack_ms_p99");
        var e2eP50 = Number(capture, "e2e_ms_p50");
        var ack = new JsonObject
        {
            ["target"] = "<= 20 at 2,000 webhooks/s offered (lower is better)",
            ["storage"] = capture?["storage"]?.DeepClone(),
            ["value"] = Json(ackP99),
            ["met"] = ackP99 is <= 20,
        };
        var e2e = new JsonObject
        {
            ["target"] = "<= 20 (lower is better)",
            ["storage"] = capture?["storage"]?.DeepClone(),
            ["value"] = Json(e2eP50),
            ["met"] = e2eP50 is <= 20,
        };
        if (ackP99 is null) ack["note"] = note ?? "not measured";
        if (e2eP50 is null) e2e["note"] = note ?? "not measured";
        return new JsonObject { ["capture_ack_p99_ms"] = ack, ["capture_e2e_p50_ms"] = e2e };
    }

    /// <summary>The median of every numeric field over runs of one measure (other fields from the first run).</summary>
    public static JsonObject MedianLine(IReadOnlyList<JsonObject> runs)
    {
        var median = new JsonObject { ["summary"] = "median" };
        foreach (var (name, value) in runs[0])
        {
            if (value is JsonValue v && v.TryGetValue<double>(out _))
            {
                var values = runs.Select(r => Number(r, name)).Where(d => d is not null).Select(d => d!.Value).ToArray();
                median[name] = values.Length == 0 ? null : JsonValue.Create(Math.Round(BenchResult.MedianOf(values), 2));
            }
            else
            {
                median[name] = value?.DeepClone();
            }
        }

        median["runs"] = runs.Count;
        return median;
    }

    private static JsonObject AtLeast(double target, double? ours, double? peer, string? peerName, string? peerNote = null)
    {
        var line = new JsonObject
        {
            ["target"] = ">= " + target.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["peer"] = peerName,
        };
        if (peerNote is not null) line["peer_note"] = peerNote;
        line["ours"] = Json(ours);
        line["peer_value"] = Json(peer);
        var ratio = ours is not null && peer is > 0 ? ours / peer : null;
        line["ratio"] = Json(ratio is null ? null : Math.Round(ratio.Value, 3));
        line["met"] = ratio >= target;
        if (peer is null) line["note"] = "not measured";
        return line;
    }

    private static Dictionary<string, double> Values(BenchResult r) => new()
    {
        ["single_enqueue_per_s"] = r.SingleEnqueuePerS,
        ["batch_enqueue_per_s"] = r.BatchEnqueuePerS,
        ["process_per_s"] = r.ProcessPerS,
        ["latency_ms_p50"] = r.LatencyMsP50,
        ["latency_ms_p99"] = r.LatencyMsP99,
    };

    private static double? Number(JsonObject? line, string field) =>
        line?[field] is JsonValue v && v.TryGetValue<double>(out var d) && double.IsFinite(d) ? d : null;

    private static JsonNode? Ratio(double? ours, double? peer) =>
        ours is { } o && peer is { } p && double.IsFinite(o) && p > 0 ? JsonValue.Create(Math.Round(o / p, 3)) : null;

    private static JsonNode? Json(double? value) => value is { } v && double.IsFinite(v) ? JsonValue.Create(v) : null;
}
