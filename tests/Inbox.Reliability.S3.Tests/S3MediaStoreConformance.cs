using Inbox.Reliability.Conformance;

namespace Inbox.Reliability.S3.Tests;

/// <summary>The media store contract on a real S3-compatible server (fauxqs), read URLs presigned and fetched over HTTP.</summary>
public sealed class S3MediaStoreConformance(FauxqsFixture fauxqs) : MediaStoreConformanceTests, IClassFixture<FauxqsFixture>
{
    protected override async Task<IMediaStoreUnderTest> CreateStoreAsync() => await S3StoreUnderTest.CreateAsync(fauxqs);
}
