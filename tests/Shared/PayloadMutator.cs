using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Inbox.Reliability.Testing;

/// <summary>The ways <see cref="PayloadMutator"/> breaks a payload.</summary>
public enum PayloadMutation { ByteFlip, Truncate, Insert, Delete, Splice, Structure, EscapeInjection }

/// <summary>
/// Mutates webhook payloads for fuzz tests (byte flips, truncations, insertions, deletions, splices with another payload,
/// JSON structure swaps, broken escapes): shared by the parser fuzz and the HTTP endpoint fuzz.
/// </summary>
public static class PayloadMutator
{
    private static readonly string[] Tokens =
    [
        "{", "}", "[", "]", ",", ":", "\"", "\\", "null", "true", "false", "0", "-1", "1e999", "-1e999", "18446744073709551616", "0.5",
        "\\ud83d", "\\udc00", "\\u0000", "\"\\ud800\"", "{\"low\":-1,\"high\":-1}", "\"@g.us\"", "\"\"", "[]", "{}", "\u00e9", "\U0001F600",
        "\"messages\"", "\"statuses\"", "\"ids\"", "\"type\"", "\"event\"", "\"payload\"", "\"data\"", "\"key\"", "\"entry\"",
    ];

    public static byte[] Mutate(Random random, PayloadMutation mutation, byte[] original, IReadOnlyList<byte[]> corpus)
    {
        var bytes = original.ToList();
        switch (mutation)
        {
            case PayloadMutation.ByteFlip:
                for (var n = random.Next(1, 9); n > 0; n--) bytes[random.Next(bytes.Count)] ^= (byte)random.Next(1, 256);
                break;
            case PayloadMutation.Truncate:
                return original[..random.Next(original.Length)];
            case PayloadMutation.Insert:
                var insert = random.Next(3) == 0
                    ? Enumerable.Range(0, random.Next(1, 6)).Select(_ => (byte)random.Next(256)).ToArray()
                    : Encoding.UTF8.GetBytes(Tokens[random.Next(Tokens.Length)]);
                bytes.InsertRange(random.Next(bytes.Count + 1), insert);
                break;
            case PayloadMutation.Delete:
                var start = random.Next(bytes.Count);
                bytes.RemoveRange(start, Math.Min(bytes.Count - start, random.Next(1, 40)));
                break;
            case PayloadMutation.Splice:
                var other = corpus[random.Next(corpus.Count)];
                return original[..random.Next(original.Length)].Concat(other[random.Next(other.Length)..]).ToArray();
            case PayloadMutation.Structure:
                return MutateStructure(random, original);
            case PayloadMutation.EscapeInjection:
                var quotes = bytes.Select((b, index) => (b, index)).Where(x => x.b == (byte)'"').Select(x => x.index).ToArray();
                var at = quotes[random.Next(quotes.Length)] + 1;
                bytes.InsertRange(at, Encoding.UTF8.GetBytes(random.Next(2) == 0 ? "\\ud83d" : "\\udc00x"));
                break;
        }

        return bytes.ToArray();
    }

    /// <summary>Swaps, removes, duplicates or retypes a random node of the parsed fixture.</summary>
    private static byte[] MutateStructure(Random random, byte[] original)
    {
        var root = JsonNode.Parse(original)!;
        for (var n = random.Next(1, 4); n > 0; n--)
        {
            var nodes = new List<JsonNode>();
            Collect(root, nodes);
            var target = nodes[random.Next(nodes.Count)];
            if (target.Parent is null) continue;
            switch (random.Next(5))
            {
                case 0:
                    Replace(target, RandomValue(random));
                    break;
                case 1:
                    if (target.Parent is JsonObject parentObject) parentObject.Remove(target.GetPropertyName());
                    else if (target.Parent is JsonArray parentArray) parentArray.Remove(target);
                    break;
                case 2:
                    var other = nodes[random.Next(nodes.Count)];
                    if (!IsAncestor(other, target) && !IsAncestor(target, other)) Replace(target, other.DeepClone());
                    break;
                case 3:
                    if (target.Parent is JsonArray array) array.Add(target.DeepClone());
                    else Replace(target, new JsonArray(target.DeepClone(), target.DeepClone()));
                    break;
                default:
                    Replace(target, new JsonObject { ["low"] = random.Next(), ["high"] = random.Next(-2, 2), ["unsigned"] = random.Next(2) == 0 });
                    break;
            }
        }

        return Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, MaxDepth = 1024 }));
    }

    private static JsonNode? RandomValue(Random random) => random.Next(12) switch
    {
        0 => null,
        1 => JsonValue.Create(long.MaxValue),
        2 => JsonValue.Create(-random.Next()),
        3 => JsonValue.Create(random.NextDouble() * 1e12),
        4 => JsonValue.Create(""),
        5 => JsonValue.Create(new string('A', random.Next(200, 2000))),
        6 => JsonValue.Create(random.Next(2) == 0),
        7 => new JsonObject(),
        8 => new JsonArray(),
        9 => JsonValue.Create("1767290000"),
        10 => Nest(random.Next(1, 80)),
        _ => JsonValue.Create(random.Next(3) switch { 0 => "120363000000000001@g.us", 1 => "81000000000001@lid", _ => "5511999990001:3@s.whatsapp.net" }),
    };

    private static JsonNode Nest(int depth)
    {
        JsonNode node = new JsonArray();
        for (var i = 0; i < depth; i++) node = new JsonObject { ["x"] = node };
        return node;
    }

    private static void Collect(JsonNode? node, List<JsonNode> nodes)
    {
        if (node is null) return;
        nodes.Add(node);
        if (node is JsonObject o) foreach (var (_, child) in o) Collect(child, nodes);
        else if (node is JsonArray a) foreach (var child in a) Collect(child, nodes);
    }

    private static bool IsAncestor(JsonNode candidate, JsonNode node)
    {
        for (var current = node; current is not null; current = current.Parent)
        {
            if (ReferenceEquals(current, candidate)) return true;
        }

        return false;
    }

    private static void Replace(JsonNode target, JsonNode? value)
    {
        switch (target.Parent)
        {
            case JsonObject o:
                o[target.GetPropertyName()] = value;
                break;
            case JsonArray a:
                a[target.GetElementIndex()] = value;
                break;
        }
    }
}
