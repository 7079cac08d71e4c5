using Inbox.Reliability.Jobs;
using Inbox.Reliability.SampleHost.Demo;

namespace Inbox.Reliability.SampleHost.Handlers;

/// <summary>An inbound WhatsApp message.</summary>
/// <param name="Run">The demo run that enqueued it.</param>
/// <param name="MessageId">The WhatsApp message id (wamid); also the job's dedupe key.</param>
/// <param name="ChatId">The chat; also the job's ordering key.</param>
/// <param name="Sequence">The message's position in its chat, from 0.</param>
/// <param name="Text">The message text.</param>
/// <param name="Simulate">Demo only: how the job should misbehave.</param>
public sealed record ChatMessagePayload(string Run, string MessageId, string ChatId, int Sequence, string Text, Simulation? Simulate = null);

/// <summary>
/// Stores an inbound message in the conversation. The jobs are keyed by chat id, so the messages of one chat run
/// one at a time and in the order they arrived, even when one of them fails and waits for its retry; different
/// chats run in parallel. The handler reports each message to <see cref="ChatOrderChecker"/>, which counts
/// any message that runs out of order.
/// </summary>
public sealed class ChatMessageHandler(ChatOrderChecker order) : IJobHandler
{
    /// <inheritdoc />
    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var message = job.GetPayload<ChatMessagePayload>(SampleJson.Options) ?? throw new FatalJobException("The message payload is empty.");

        using var check = order.Begin(message);
        await Task.Delay(Random.Shared.Next(2, 10), cancellationToken); // append to the conversation store

        if (message.Simulate?.FailsOn(job.Attempt) == true)
        {
            throw new TimeoutException($"The conversation store did not answer in time for {message.MessageId} (simulated).");
        }

        check.Completed();
    }
}
