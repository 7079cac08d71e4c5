namespace Inbox.Reliability.Jobs;

/// <summary>One queue's handler type and options, as registered with <c>AddJobHandler</c>.</summary>
internal sealed record JobHandlerRegistration(string Queue, Type HandlerType, JobHandlerOptions Options);
