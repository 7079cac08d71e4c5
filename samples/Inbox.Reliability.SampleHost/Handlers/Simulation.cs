namespace Inbox.Reliability.SampleHost.Handlers;

/// <summary>
/// Demo only: how a job should misbehave, carried in its payload so every outcome is predictable and can be
/// checked at the end. A real payload has nothing like it.
/// </summary>
/// <param name="Failures">How many attempts fail before one succeeds; <see cref="Always"/> for a job that never succeeds.</param>
/// <param name="Fatal">Fail at once with <c>FatalJobException</c>: no retry can help.</param>
public sealed record Simulation(int Failures = 0, bool Fatal = false)
{
    /// <summary>Every attempt fails: the job is dead-lettered after its MaxAttempts.</summary>
    public const int Always = int.MaxValue;

    /// <summary>True when this attempt should fail with a transient (retryable) error.</summary>
    public bool FailsOn(int attempt) => attempt <= Failures;
}
