using System.Text.Json;
using Inbox.Reliability.Jobs;
using Inbox.Reliability.SampleHost.Handlers;

namespace Inbox.Reliability.SampleHost.Demo;

/// <summary>
/// The demo's jobs: about half chat messages (keyed by chat, some failing once, a few delivered twice by the
/// "webhook"), 40% receipts (10% failing once) and 10% media downloads, among them the poison jobs: a few that
/// fail fatally and a few that fail on every attempt.
/// </summary>
public sealed class DemoWorkload
{
    private static readonly string[] Texts = ["Hi!", "Is my order on its way?", "Order #4711", "Thanks", "Can I change the address?", "👍", "See you tomorrow"];

    private DemoWorkload(string run, List<JobRequest> requests, List<int> redeliveries, Dictionary<string, int> messagesPerChat, int poison)
    {
        Run = run;
        Poison = poison;
        Requests = requests;
        Redeliveries = redeliveries;
        MessagesPerChat = messagesPerChat;
    }

    /// <summary>The run id written into every payload.</summary>
    public string Run { get; }

    /// <summary>What to enqueue, in order: every job once, plus the redelivered chat messages right after their original.</summary>
    public IReadOnlyList<JobRequest> Requests { get; }

    /// <summary>The indexes in <see cref="Requests"/> of the redeliveries (each repeats the request before it).</summary>
    public IReadOnlyList<int> Redeliveries { get; }

    /// <summary>How many messages each chat has.</summary>
    public IReadOnlyDictionary<string, int> MessagesPerChat { get; }

    /// <summary>How many jobs are meant to be dead-lettered.</summary>
    public int Poison { get; }

    /// <summary>How many distinct jobs the workload has.</summary>
    public int Jobs => Requests.Count - Redeliveries.Count;

    /// <summary>Builds a workload of <paramref name="jobs"/> jobs (at least 10).</summary>
    public static DemoWorkload Create(string run, int jobs)
    {
        var media = Math.Max(2, jobs / 10);
        var expired = Math.Max(1, jobs / 100);
        var unreachable = Math.Max(1, jobs / 100);
        var flakyMedia = media / 10;
        var messages = jobs / 2;
        var chats = Math.Min(20, messages);
        var receipts = jobs - messages - media;

        var requests = new List<JobRequest>(jobs + (messages / 25) + 1);
        var redeliveries = new List<int>();
        var perChat = new Dictionary<string, int>(StringComparer.Ordinal);

        // Chat messages, keyed by chat: the messages of a chat must run in this order. ~5% fail once, and the
        // retry holds back the rest of the chat. Every 25th is delivered twice, as WhatsApp does when a webhook
        // call was not acknowledged in time: the dedupe key (the message id) collapses it into the job already queued.
        for (var i = 0; i < messages; i++)
        {
            var chat = $"chat-{(i % chats) + 1:00}";
            var sequence = i / chats;
            perChat[chat] = sequence + 1;
            var message = new ChatMessagePayload(run, $"wamid.{run}.in.{i}", chat, sequence, Texts[i % Texts.Length], i % 19 == 7 ? new Simulation(Failures: 1) : null);
            var request = new JobRequest(Queues.ChatMessages, Serialize(message)) { Key = chat, DedupeKey = message.MessageId };
            requests.Add(request);
            if (i % 25 == 11)
            {
                redeliveries.Add(requests.Count);
                requests.Add(request);
            }
        }

        // Receipts, unkeyed: 10% fail once (the CRM answers 503) and succeed on the retry.
        for (var i = 0; i < receipts; i++)
        {
            var receipt = new ReceiptPayload(run, $"wamid.{run}.out.{i}", i % 3 == 0 ? "read" : "delivered", i % 10 == 3 ? new Simulation(Failures: 1) : null);
            requests.Add(new JobRequest(Queues.Receipts, Serialize(receipt)));
        }

        // Media downloads: the poison jobs. Some fail fatally (the media expired), some fail on every attempt
        // (the CDN is down) and are dead-lettered after MaxAttempts, some fail twice and then succeed.
        for (var i = 0; i < media; i++)
        {
            Simulation? simulate = i < expired ? new Simulation(Fatal: true)
                : i < expired + unreachable ? new Simulation(Failures: Simulation.Always)
                : i < expired + unreachable + flakyMedia ? new Simulation(Failures: 2)
                : null;
            var download = new MediaDownloadPayload(run, $"media-{run}-{i}", i % 2 == 0 ? "image/jpeg" : "audio/ogg", simulate);
            requests.Add(new JobRequest(Queues.MediaDownloads, Serialize(download)));
        }

        return new DemoWorkload(run, requests, redeliveries, perChat, expired + unreachable);
    }

    private static string Serialize<T>(T payload) => JsonSerializer.Serialize(payload, SampleJson.Options);
}
