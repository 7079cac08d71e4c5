using Microsoft.Extensions.DependencyInjection;

namespace Inbox.Reliability;

/// <summary>
/// Configures Inbox.Reliability. Returned by <c>services.AddInboxReliability()</c>; storage, handlers and later
/// features are extension methods on it (<c>UseSqlite</c>, <c>AddJobHandler</c>).
/// </summary>
public interface IInboxReliabilityBuilder
{
    /// <summary>The host's service collection.</summary>
    IServiceCollection Services { get; }
}

internal sealed class InboxReliabilityBuilder(IServiceCollection services) : IInboxReliabilityBuilder
{
    public IServiceCollection Services { get; } = services;
}

/// <summary>Marks that a storage provider was configured, and which one (for startup messages).</summary>
/// <param name="Name">The storage's name, e.g. "SQLite".</param>
/// <param name="Method">The builder method that registered it, e.g. "UseSqlite".</param>
public sealed record InboxStorageRegistration(string Name, string Method);
