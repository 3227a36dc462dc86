using System.Net;
using System.Net.Http.Headers;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Api;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Connectors;

public sealed class ChannelSafetyTests : AppTest
{
    /// <summary>A body nobody may read: reading it fails the test.</summary>
    private sealed class UnreadableBody : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => 0; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new InvalidOperationException("The body was read before the signature headers were checked.");
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => throw new InvalidOperationException("The body was read before the signature headers were checked.");
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class OneAccount(ChannelAccount account) : IChannelAccounts
    {
        public ChannelAccount? Find(string id) => id == account.Id ? account : null;
        public IReadOnlyList<ChannelAccount> EnabledOf(ChannelKind kind) => [account];
        public event Action<ChannelAccountChange>? Changed { add { } remove { } }
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("yesterday", "sha256=00")]
    [InlineData("1000000000", "sha256=00")]
    public async Task Missing_malformed_or_stale_signature_headers_are_refused_before_the_body_is_read(string? timestamp, string? signature)
    {
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        http.Request.Body = new UnreadableBody();
        http.Request.ContentLength = 20 * 1024 * 1024;
        if (timestamp is not null)
            http.Request.Headers[Crm.Connectors.Api.Http.RequestSignature.TimestampHeader] = timestamp;
        if (signature is not null)
            http.Request.Headers[Crm.Connectors.Api.Http.RequestSignature.SignatureHeader] = signature;
        var options = new ApiChannelOptions();
        await using var limiter = new ApiChannelRateLimiter(Microsoft.Extensions.Options.Options.Create(options));
        var accounts = new OneAccount(new ChannelAccount("bridge", ChannelKind.Api, "Bridge", true, CrmApp.ChannelSecret, null, DateTimeOffset.UtcNow));

        var (_, _, problem) = await ApiChannelEndpoints.ReadSignedAsync<InboundMessageRequest>("bridge", http, accounts, limiter, options, TimeProvider.System, CancellationToken.None);

        Assert.Equal(401, problem?.StatusCode);
    }

    private sealed class NoAccounts : IChannelAccounts
    {
        public ChannelAccount? Find(string id) => null;
        public IReadOnlyList<ChannelAccount> EnabledOf(ChannelKind kind) => [];
        public event Action<ChannelAccountChange>? Changed { add { } remove { } }
    }

    [Fact]
    public async Task A_reply_for_an_account_the_directory_cannot_read_waits_instead_of_failing_for_good()
    {
        var sender = new WebhookSender(null!, new NoAccounts(), TimeProvider.System);

        var result = await sender.SendAsync(new OutboundDelivery
        {
            MessageId = Guid.NewGuid(), TicketNumber = 10001, ChannelAccountId = "bridge", ThreadKey = "t", Recipient = "external:bridge:u",
            Author = "apikey:a", Text = "hi", CreatedAt = DateTimeOffset.UtcNow, Attempt = 1,
        });

        Assert.False(result.Success);
        Assert.False(result.Permanent);
    }

    [Fact]
    public void Channel_records_never_print_their_secrets()
    {
        var account = new ChannelAccount("bridge", ChannelKind.Api, "Bridge", true, "s3cret-value", null, DateTimeOffset.UtcNow);
        var settings = new ChannelAccountSettings { Kind = ChannelKind.Api, Name = "Bridge", Secret = "s3cret-value", SecretSettings = new Dictionary<string, string> { ["password"] = "hunter2-value" } };

        foreach (var text in new[] { account.ToString(), new ChannelAccountChange(null, account).ToString(), settings.ToString() })
        {
            Assert.DoesNotContain("s3cret-value", text, StringComparison.Ordinal);
            Assert.DoesNotContain("hunter2-value", text, StringComparison.Ordinal);
        }
    }
}
