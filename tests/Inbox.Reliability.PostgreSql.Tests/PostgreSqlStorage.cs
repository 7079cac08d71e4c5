using Inbox.Reliability.Conformance;

namespace Inbox.Reliability.PostgreSql.Tests;

/// <summary>A fresh schema per test, with a random name, dropped afterwards.</summary>
public sealed class PostgreSqlStorage(PostgresServer server) : IStorageUnderTest
{
    public string Schema { get; } = PostgresServer.NewSchema();

    public PostgresServer Server => server;

    public void Configure(IInboxReliabilityBuilder builder) => builder.UsePostgreSql(server.ConnectionString, o => o.Schema = Schema);

    public async ValueTask DisposeAsync() => await server.DropSchemaAsync(Schema);
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlJobStoreConformance(PostgresServer server) : JobStoreConformanceTests
{
    protected override IStorageUnderTest CreateStorage() => new PostgreSqlStorage(server);
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlJobEngineConformance(PostgresServer server) : JobEngineConformanceTests
{
    protected override IStorageUnderTest CreateStorage() => new PostgreSqlStorage(server);
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlWebhookPipelineConformance(PostgresServer server) : WebhookPipelineConformanceTests
{
    protected override IStorageUnderTest CreateStorage() => new PostgreSqlStorage(server);
}

[Collection(PostgresCollection.Name)]
public sealed class PostgreSqlMediaPipelineConformance(PostgresServer server) : MediaPipelineConformanceTests
{
    protected override IStorageUnderTest CreateStorage() => new PostgreSqlStorage(server);
}
