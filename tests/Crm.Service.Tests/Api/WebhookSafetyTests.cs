using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Crm.Connectors.Api;
using Crm.Connectors.Api.Http;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Api;

/// <summary>
/// Outbound webhooks cannot be turned against the service's own network (SSRF), are not redirected elsewhere, and
/// cannot make the service read an endless answer. The app tests run the real outbox against a real receiver.
/// </summary>
public sealed class WebhookSafetyTests : AppTest
{
    private WebhookReceiver _bridge = null!;

    public override async Task InitializeAsync()
    {
        _bridge = await WebhookReceiver.StartAsync();
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _bridge.DisposeAsync();
    }

    [Fact]
    public async Task A_webhook_on_a_loopback_address_gets_nothing_and_the_reply_fails_naming_the_address()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?> { ["Channels:Api:AllowPrivateNetworkWebhooks"] = "false" });
        await app.CreateApiChannelAsync(webhookUrl: _bridge.Url);
        var ticket = await OpenTicketAsync(app);
        using var agent = await app.AgentAsync();

        var id = await ReplyAsync(agent, ticket, "Hello from the inside");

        var failed = await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, id), m => m.GetProperty("delivery").GetString() == "failed", what: "delivery failed");
        Assert.DoesNotContain("127.0.0.1", failed.GetProperty("deliveryError").GetString(), StringComparison.Ordinal);
        var reason = await app.OutboxErrorAsync(id);
        Assert.Contains("127.0.0.1", reason, StringComparison.Ordinal);
        Assert.Contains("loopback", reason, StringComparison.Ordinal);
        Assert.Empty(_bridge.Requests);
    }

    [Fact]
    public async Task A_redirecting_webhook_is_not_followed_and_the_reply_fails()
    {
        await App.CreateApiChannelAsync(webhookUrl: _bridge.RedirectUrl);
        var ticket = await OpenTicketAsync(App);
        using var agent = await App.AgentAsync();

        var id = await ReplyAsync(agent, ticket, "Where are you going?");

        var failed = await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, id), m => m.GetProperty("delivery").GetString() == "failed", what: "delivery failed");
        Assert.DoesNotContain("302", failed.GetProperty("deliveryError").GetString(), StringComparison.Ordinal);
        var reason = await App.OutboxErrorAsync(id);
        Assert.Contains("302", reason, StringComparison.Ordinal);
        Assert.Contains("redirects are not followed", reason, StringComparison.Ordinal);
        Assert.Equal(0, _bridge.RedirectTargetHits);
    }

    [Fact]
    public async Task A_webhook_answering_megabytes_is_sent_without_reading_them()
    {
        await App.CreateApiChannelAsync(webhookUrl: _bridge.FloodUrl);
        var ticket = await OpenTicketAsync(App);
        using var agent = await App.AgentAsync();

        var id = await ReplyAsync(agent, ticket, "Short question");

        var sent = await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, id), m => m.GetProperty("delivery").GetString() == "sent", what: "delivery sent");
        var written = _bridge.FloodBytesWritten;
        Assert.True(written < WebhookReceiver.FloodBytes / 4, $"the receiver had written {written} bytes when the send completed");
        // The first 64 KiB are not a JSON document, so the bridge's id is not taken from them.
        Assert.False(sent.TryGetProperty("externalId", out var externalId) && externalId.ValueKind == JsonValueKind.String);
    }

    private static async Task<long> OpenTicketAsync(CrmApp app)
    {
        var response = await app.PostMessageAsync(new { messageId = "in-1", sender = new { id = "user-7" }, text = "Help" });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private static async Task<Guid> ReplyAsync(HttpClient agent, long ticket, string text)
    {
        var response = await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private static async Task<JsonElement> MessageAsync(HttpClient agent, long ticket, Guid id) =>
        (await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}")).GetProperty("timeline").EnumerateArray()
            .Single(m => m.GetProperty("id").GetGuid() == id);

    /// <summary>The address rules, the connect step and the response reader on their own, without an app.</summary>
    public sealed class Parts
    {
        [Fact]
        public async Task The_response_reader_never_asks_for_more_than_64_KiB()
        {
            var endless = new EndlessStream();

            var body = await ResponseBody.ReadAsync(endless, WebhookSender.MaxResponseBytes, CancellationToken.None);

            Assert.Equal(64 * 1024, body.Length);
            Assert.Equal(64 * 1024, endless.BytesRead);
        }

        [Fact]
        public async Task The_response_reader_returns_a_short_body_whole()
        {
            var body = await ResponseBody.ReadAsync(new MemoryStream("{\"messageId\":\"b-1\"}"u8.ToArray()), WebhookSender.MaxResponseBytes, CancellationToken.None);

            Assert.Equal("{\"messageId\":\"b-1\"}"u8.ToArray(), body);
        }

        [Fact]
        public async Task The_connector_refuses_a_name_that_resolves_to_loopback()
        {
            using var listener = Listen(out var port);

            var refused = await Assert.ThrowsAsync<WebhookAddressRefusedException>(() =>
                WebhookConnector.ConnectAsync(new DnsEndPoint("localhost", port), allowPrivateNetworks: false, CancellationToken.None).AsTask());

            Assert.Contains("localhost", refused.Message, StringComparison.Ordinal);
            Assert.Contains("127.0.0.1 (loopback", refused.Message, StringComparison.Ordinal);
        }

        [Theory]
        [InlineData("127.0.0.1")]
        [InlineData("[::1]")]
        [InlineData("::ffff:127.0.0.1")]
        public async Task The_connector_refuses_loopback_literals(string host)
        {
            await Assert.ThrowsAsync<WebhookAddressRefusedException>(() =>
                WebhookConnector.ConnectAsync(new DnsEndPoint(host, 9), allowPrivateNetworks: false, CancellationToken.None).AsTask());
        }

        [Fact]
        public async Task The_connector_connects_to_a_private_address_when_allowed()
        {
            using var listener = Listen(out var port);

            await using var stream = await WebhookConnector.ConnectAsync(new DnsEndPoint("127.0.0.1", port), allowPrivateNetworks: true, CancellationToken.None);

            Assert.True(stream.CanWrite);
        }

        [Theory]
        [InlineData("127.0.0.1", "loopback")]
        [InlineData("127.255.255.254", "loopback")]
        [InlineData("10.0.0.1", "private")]
        [InlineData("10.255.255.255", "private")]
        [InlineData("172.16.0.1", "private")]
        [InlineData("172.31.255.255", "private")]
        [InlineData("192.168.1.10", "private")]
        [InlineData("169.254.169.254", "link-local")]
        [InlineData("100.64.0.1", "CGNAT")]
        [InlineData("100.127.255.255", "CGNAT")]
        [InlineData("0.0.0.0", "unspecified")]
        [InlineData("255.255.255.255", "broadcast")]
        [InlineData("224.0.0.251", "multicast")]
        [InlineData("239.255.255.250", "multicast")]
        [InlineData("240.0.0.1", "reserved")]
        [InlineData("::", "unspecified")]
        [InlineData("::1", "loopback")]
        [InlineData("fe80::1", "link-local")]
        [InlineData("febf:ffff::1", "link-local")]
        [InlineData("fc00::1", "unique local")]
        [InlineData("fd12:3456:789a::1", "unique local")]
        [InlineData("fec0::1", "site-local")]
        [InlineData("ff02::1", "multicast")]
        [InlineData("::ffff:127.0.0.1", "loopback")]
        [InlineData("::ffff:10.1.2.3", "private")]
        [InlineData("::ffff:172.20.0.1", "private")]
        [InlineData("::ffff:192.168.0.1", "private")]
        [InlineData("::ffff:169.254.169.254", "link-local")]
        [InlineData("::ffff:100.64.1.1", "CGNAT")]
        [InlineData("::ffff:0.0.0.0", "unspecified")]
        [InlineData("::ffff:255.255.255.255", "broadcast")]
        [InlineData("::ffff:224.0.0.1", "multicast")]
        [InlineData("::127.0.0.1", "loopback")]
        [InlineData("64:ff9b::a9fe:a9fe", "link-local")]
        [InlineData("192.0.0.192", "IETF")]
        [InlineData("192.0.2.1", "TEST-NET")]
        [InlineData("198.51.100.7", "TEST-NET")]
        [InlineData("203.0.113.9", "TEST-NET")]
        [InlineData("198.18.0.1", "benchmarking")]
        [InlineData("198.19.255.255", "benchmarking")]
        [InlineData("2002:7f00:1::1", "loopback")]
        [InlineData("2002:a9fe:a9fe::", "link-local")]
        [InlineData("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo")]
        [InlineData("2001:db8::1", "documentation")]
        [InlineData("64:ff9b:1::a00:1", "NAT64")]
        public void Refuses_internal_addresses_and_says_why(string address, string why)
        {
            var reason = WebhookAddressRules.WhyRefused(IPAddress.Parse(address));

            Assert.NotNull(reason);
            Assert.Contains(why, reason, StringComparison.Ordinal);
        }

        [Theory]
        [InlineData("93.184.215.14")]
        [InlineData("8.8.8.8")]
        [InlineData("1.1.1.1")]
        [InlineData("172.15.255.255")]
        [InlineData("172.32.0.1")]
        [InlineData("100.63.255.255")]
        [InlineData("100.128.0.1")]
        [InlineData("169.253.1.1")]
        [InlineData("192.169.0.1")]
        [InlineData("11.0.0.1")]
        [InlineData("223.255.255.254")]
        [InlineData("2606:2800:21f:cb07:6820:80da:af6b:8b2c")]
        [InlineData("2001:4860:4860::8888")]
        [InlineData("::ffff:8.8.8.8")]
        [InlineData("64:ff9b::808:808")]
        [InlineData("2002:808:808::1")]
        [InlineData("198.20.0.1")]
        [InlineData("192.0.3.1")]
        public void Allows_public_addresses(string address) =>
            Assert.Null(WebhookAddressRules.WhyRefused(IPAddress.Parse(address)));

        private static TcpListener Listen(out int port)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
            return listener;
        }

        /// <summary>An answer that never ends, counting what was asked of it.</summary>
        private sealed class EndlessStream : Stream
        {
            public long BytesRead { get; private set; }

            public override bool CanRead => true;
            public override bool CanSeek => false;
            public override bool CanWrite => false;
            public override long Length => throw new NotSupportedException();
            public override long Position { get => BytesRead; set => throw new NotSupportedException(); }

            public override int Read(byte[] buffer, int offset, int count)
            {
                buffer.AsSpan(offset, count).Fill((byte)'x');
                BytesRead += count;
                return count;
            }

            public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            {
                buffer.Span.Fill((byte)'x');
                BytesRead += buffer.Length;
                return ValueTask.FromResult(buffer.Length);
            }

            public override void Flush() { }
            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
            public override void SetLength(long value) => throw new NotSupportedException();
            public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        }
    }
}
