using Inbox.Reliability.Jobs;

namespace Inbox.Reliability.Tests;

public sealed class BackoffTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(6, 32)]
    public void Delay_grows_exponentially_from_the_base(int attempt, int seconds)
    {
        var backoff = new RetryBackoffOptions { Base = TimeSpan.FromSeconds(1), Factor = 2, Jitter = 0 };
        Assert.Equal(TimeSpan.FromSeconds(seconds), backoff.DelayFor(attempt, random: 0.7));
    }

    [Fact]
    public void Delay_is_capped_even_for_huge_attempt_numbers()
    {
        var backoff = new RetryBackoffOptions { Base = TimeSpan.FromSeconds(1), Factor = 10, Cap = TimeSpan.FromMinutes(5), Jitter = 0 };
        Assert.Equal(TimeSpan.FromSeconds(100), backoff.DelayFor(3, 0));
        Assert.Equal(TimeSpan.FromMinutes(5), backoff.DelayFor(4, 0));
        Assert.Equal(TimeSpan.FromMinutes(5), backoff.DelayFor(10_000, 0));
    }

    [Fact]
    public void Jitter_takes_off_at_most_its_fraction()
    {
        var backoff = new RetryBackoffOptions { Base = TimeSpan.FromSeconds(10), Jitter = 0.2 };
        Assert.Equal(TimeSpan.FromSeconds(10), backoff.DelayFor(1, random: 0));
        Assert.Equal(TimeSpan.FromSeconds(8), backoff.DelayFor(1, random: 1));
        Assert.Equal(TimeSpan.FromSeconds(9), backoff.DelayFor(1, random: 0.5));
    }

    [Fact]
    public void Invalid_backoff_and_handler_options_are_all_reported()
    {
        var options = new JobHandlerOptions { Concurrency = 0, BatchSize = 0, LeaseDuration = TimeSpan.FromSeconds(3), HeartbeatInterval = TimeSpan.FromSeconds(5), MaxAttempts = 0 };
        options.Backoff.Factor = 0.5;
        options.Backoff.Jitter = 2;
        options.FatalExceptions.Add(typeof(string));
        var errors = options.Validate("q").ToList();
        Assert.Equal(7, errors.Count);
        Assert.All(errors, e => Assert.StartsWith("AddJobHandler(\"q\")", e, StringComparison.Ordinal));
        Assert.Empty(new JobHandlerOptions().Validate("q"));
    }

    [Fact]
    public void Default_global_options_are_valid_and_bad_ones_name_the_setting()
    {
        Assert.Empty(new InboxReliabilityOptions().Validate());
        var errors = new InboxReliabilityOptions { WorkerName = "", DefaultMaxAttempts = 0, LeaseReaperInterval = TimeSpan.Zero, ShutdownGracePeriod = TimeSpan.FromSeconds(-1) }.Validate().ToList();
        Assert.Equal(4, errors.Count);
        Assert.Contains(errors, e => e.Contains("WorkerName", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("ShutdownGracePeriod", StringComparison.Ordinal));
    }
}
