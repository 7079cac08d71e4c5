using System.Globalization;
using Inbox.Reliability.Media;
using Inbox.Reliability.Testing;
using Xunit.Abstractions;
using Microsoft.Extensions.DependencyInjection;

namespace Inbox.Reliability.S3.Tests;

/// <summary>Runs alone (no other test in parallel), so this process's memory is the put's.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryCollection
{
    public const string Name = "memory";
}

[Collection(MemoryCollection.Name)]
public sealed class S3MemoryTests(ITestOutputHelper output)
{
    private const long Mib = 1024 * 1024;

    [Fact]
    public async Task A_200_MB_put_of_a_non_seekable_stream_stays_well_under_50_MB_of_memory()
    {
        await using var server = new FauxqsServer("memory-bucket");
        await server.StartAsync();
        var services = new ServiceCollection();
        services.AddInboxReliability().UseS3MediaStore(o => S3Clients.Configure(o, server, "memory-bucket")); // default 16 MiB threshold, 8 MiB parts
        await using var provider = services.BuildServiceProvider();
        var store = provider.GetRequiredService<IMediaStore>();

        // Warm up (JIT, connection pool, SDK caches) so the measure is the put's own memory.
        await store.PutAsync("warm/1.bin", GeneratedStream.Random(20 * Mib, seed: 1), null);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var before = ProcessPeak.Reset();

        var source = GeneratedStream.Random(200 * Mib, seed: 2);
        var put = await store.PutAsync("big/200mb.bin", source, "video/mp4");
        var peak = ProcessPeak.Read();

        Assert.Equal(200 * Mib, put.Size);
        Assert.Equal(source.Sha256(), put.Sha256);
        Assert.Equal(put, await store.GetAsync("big/200mb.bin"));
        var grew = (peak - before) / (double)Mib;
        output.WriteLine($"resident before {before / (double)Mib:F1} MB, peak during the put {peak / (double)Mib:F1} MB: +{grew:F1} MB");
        Assert.True(grew < 50, $"peak resident memory grew by {grew:F1} MB during the put (before {before / Mib} MB, peak {peak / Mib} MB)");
    }

    /// <summary>This process's peak resident set (VmHWM), which Linux resets to the current one on a write of 5 to clear_refs.</summary>
    private static class ProcessPeak
    {
        public static long Reset()
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return Read("VmRSS:");
        }

        public static long Read() => Read("VmHWM:");

        private static long Read(string field)
        {
            var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
            return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
    }
}
