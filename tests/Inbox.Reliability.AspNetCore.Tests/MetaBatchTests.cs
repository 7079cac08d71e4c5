using System.Net;
using System.Text;
using Inbox.Reliability.Conformance;

namespace Inbox.Reliability.AspNetCore.Tests;

/// <summary>The heavy tests run alone, after the others, so their timings do not depend on what runs beside them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LoadCollection
{
    public const string Name = "load";
}

/// <summary>A full Meta batch through HTTP, ingest and per-chat dispatch.</summary>
[Collection(LoadCollection.Name)]
public sealed class MetaBatchTests
{
    [Fact]
    public async Task A_meta_batch_of_1000_messages_is_stored_once_and_its_1000_events_reach_the_handler_in_order()
    {
        await using var host = await WebhookHost.StartAsync();
        var messages = string.Join(",", Enumerable.Range(1, 1000).Select(i =>
            $$$"""{"from":"5511888880000","id":"wamid.B{{{i:0000}}}","timestamp":"{{{1767290000 + i}}}","type":"text","text":{"body":"n{{{i}}}"}}"""));
        var body = Encoding.UTF8.GetBytes($$$"""{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":"PN1"},"contacts":[{"profile":{"name":"Bob"},"wa_id":"5511888880000"}],"messages":[{{{messages}}}]}}]}]}""");
        Assert.InRange(body.Length, 100_000, host.Settings.MaxBodyBytes);

        var answer = await CaptureAnswer.ReadAsync(await host.PostAsync("meta", "phone-1", body));
        Assert.Equal((HttpStatusCode.OK, "stored"), (answer.Status, answer.State));
        await Eventually.TrueAsync(() => host.Seen("meta", "phone-1").Count >= 1000, "1,000 events", TimeSpan.FromSeconds(120));
        var seen = host.Seen("meta", "phone-1");
        Assert.Equal(Enumerable.Range(1, 1000).Select(i => $"wamid.B{i:0000}"), seen.Select(s => s.Event.ExternalId));
        Assert.Equal(Enumerable.Range(1, 1000).Select(i => (long)i), seen.Select(s => s.Sequence));
        Assert.Equal(1000, (await host.Store.GetRawWebhookAsync(answer.Id!.Value))!.EventCount);
        Assert.Single(await host.AllRawAsync());
    }
}
