using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.Api.Http;
using Crm.Service.Grains.Records;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Api;

public sealed class OutboundWebhookTests : AppTest
{
    private WebhookReceiver _bridge = null!;

    internal override string WebhookUrl => _bridge.Url;

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

    private async Task<long> OpenTicketAsync()
    {
        var response = await App.PostMessageAsync(new { messageId = "in-1", sender = new { id = "user-7" }, text = "Help" });
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private async Task<JsonElement> ReplyAsync(HttpClient agent, long ticket, string text)
    {
        var response = await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private async Task<JsonElement> MessageAsync(HttpClient agent, long ticket, Guid id) =>
        (await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}")).GetProperty("timeline").EnumerateArray()
            .Single(m => m.GetProperty("id").GetGuid() == id);

    [Fact]
    public async Task A_reply_is_posted_to_the_webhook_signed_and_marked_sent()
    {
        var ticket = await OpenTicketAsync();
        using var agent = await App.AgentAsync();

        var reply = await ReplyAsync(agent, ticket, "We shipped it today.");
        Assert.Equal("queued", reply.GetProperty("delivery").GetString());
        var id = reply.GetProperty("id").GetGuid();

        var sent = await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, id), m => m.GetProperty("delivery").GetString() == "sent", what: "delivery status sent");
        Assert.Equal("bridge-1", sent.GetProperty("externalId").GetString());
        var received = Assert.Single(_bridge.Requests);
        Assert.Equal(id.ToString(), received.Delivery);
        Assert.Equal(RequestSignature.Outcome.Valid, RequestSignature.Verify(CrmApp.ChannelSecret, received.Timestamp, received.Signature, received.Body, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5)));
        var payload = JsonSerializer.Deserialize<JsonElement>(received.Body);
        Assert.Equal("We shipped it today.", payload.GetProperty("text").GetString());
        Assert.Equal("external:bridge:user-7", payload.GetProperty("recipient").GetString());
        Assert.Equal(ticket, payload.GetProperty("ticketNumber").GetInt64());
    }

    [Fact]
    public async Task A_failing_webhook_is_retried_until_it_answers_2xx()
    {
        var ticket = await OpenTicketAsync();
        using var agent = await App.AgentAsync();
        _bridge.Answers.Enqueue(500);
        _bridge.Answers.Enqueue(503);

        var id = (await ReplyAsync(agent, ticket, "Retry me")).GetProperty("id").GetGuid();

        await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, id), m => m.GetProperty("delivery").GetString() == "sent", what: "delivery after retries");
        Assert.Equal(3, _bridge.Requests.Count);
        Assert.All(_bridge.Requests, r => Assert.Equal(id.ToString(), r.Delivery));
    }

    [Fact]
    public async Task A_webhook_that_refuses_the_message_marks_it_failed_with_the_reason()
    {
        var ticket = await OpenTicketAsync();
        using var agent = await App.AgentAsync();
        _bridge.Answers.Enqueue(422);

        var id = (await ReplyAsync(agent, ticket, "Refused")).GetProperty("id").GetGuid();

        var failed = await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, id), m => m.GetProperty("delivery").GetString() == "failed", what: "delivery failed");
        // Agents get a generic error; the bridge's own answer is for admins and the log.
        Assert.DoesNotContain("422", failed.GetProperty("deliveryError").GetString(), StringComparison.Ordinal);
        Assert.Contains("422", await App.OutboxErrorAsync(id), StringComparison.Ordinal);
        using var admin = App.Admin();
        var channel = await Eventually.WaitForAsync(() => admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/bridge"),
            c => c.GetProperty("lastError").ValueKind == JsonValueKind.String, what: "the channel's health");
        Assert.Contains("422", channel.GetProperty("lastError").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bridge_that_answers_the_same_id_to_every_reply_gets_each_reply_once_and_loses_no_inbound_message()
    {
        _bridge.FixedMessageId = "queued";
        var ticket = await OpenTicketAsync();
        using var agent = await App.AgentAsync();

        var first = (await ReplyAsync(agent, ticket, "First")).GetProperty("id").GetGuid();
        var second = (await ReplyAsync(agent, ticket, "Second")).GetProperty("id").GetGuid();
        await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, second), m => m.GetProperty("delivery").GetString() == "sent", what: "second reply sent");
        // Sent in parallel: either may be recorded first.
        await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, first), m => m.GetProperty("delivery").GetString() == "sent", what: "first reply sent");

        // A later customer message whose id happens to equal the bridge's id for our replies is a new message.
        var inbound = await App.PostMessageAsync(new { messageId = "queued", sender = new { id = "user-7" }, text = "Thanks, and one more thing" });
        Assert.Equal(HttpStatusCode.Accepted, inbound.StatusCode);
        var body = await inbound.Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(body.GetProperty("duplicate").GetBoolean());
        Assert.NotEqual(first, body.GetProperty("messageId").GetGuid());
        Assert.NotEqual(second, body.GetProperty("messageId").GetGuid());

        // Both replies are done in the outbox: neither stays queued to be posted again at every poll.
        var states = await App.QueryAsync(db => db.Outbox.Where(o => o.MessageId == first || o.MessageId == second).Select(o => o.State).ToListAsync());
        Assert.Equal([OutboxState.Done, OutboxState.Done], states);
        Assert.Equal(2, _bridge.Requests.Count);
    }

    [Fact]
    public async Task A_replayed_or_late_receipt_never_moves_the_status_back()
    {
        var ticket = await OpenTicketAsync();
        using var agent = await App.AgentAsync();
        var id = (await ReplyAsync(agent, ticket, "Receipts")).GetProperty("id").GetGuid();
        await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, id), m => m.GetProperty("delivery").GetString() == "sent", what: "sent");
        using var client = App.CreateClient();
        async Task<HttpStatusCode> ReceiptAsync(object receipt) => (await client.SendAsync(Signing.SignedPost(
            "/api/v1/channels/bridge/receipts", CrmApp.ChannelSecret, JsonSerializer.Serialize(receipt)))).StatusCode;

        Assert.Equal(HttpStatusCode.Accepted, await ReceiptAsync(new { messageId = id, status = "delivered" }));
        Assert.Equal(HttpStatusCode.Accepted, await ReceiptAsync(new { messageId = id, status = "sent" }));
        Assert.Equal(HttpStatusCode.Accepted, await ReceiptAsync(new { messageId = id, status = "failed", reason = "late" }));

        var message = await MessageAsync(agent, ticket, id);
        Assert.Equal("delivered", message.GetProperty("delivery").GetString());

        // Failed is final too: a replayed "sent" or "delivered" after it does not revive the message.
        var other = (await ReplyAsync(agent, ticket, "Will fail")).GetProperty("id").GetGuid();
        await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, other), m => m.GetProperty("delivery").GetString() == "sent", what: "sent");
        Assert.Equal(HttpStatusCode.Accepted, await ReceiptAsync(new { messageId = other, status = "failed", reason = "blocked" }));
        Assert.Equal(HttpStatusCode.Accepted, await ReceiptAsync(new { messageId = other, status = "sent" }));
        Assert.Equal(HttpStatusCode.Accepted, await ReceiptAsync(new { messageId = other, status = "delivered" }));
        Assert.Equal("failed", (await MessageAsync(agent, ticket, other)).GetProperty("delivery").GetString());
    }

    [Fact]
    public async Task Receipts_may_name_any_external_id_even_one_a_customer_message_has()
    {
        var ticket = await OpenTicketAsync();
        using var agent = await App.AgentAsync();
        var id = (await ReplyAsync(agent, ticket, "Clash")).GetProperty("id").GetGuid();
        await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, id), m => m.GetProperty("delivery").GetString() == "sent", what: "sent");
        using var client = App.CreateClient();

        // "in-1" is the id of the customer's first message on this channel.
        var receipt = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/receipts", CrmApp.ChannelSecret,
            JsonSerializer.Serialize(new { messageId = id, status = "delivered", externalId = "in-1" })));

        Assert.Equal(HttpStatusCode.Accepted, receipt.StatusCode);
        Assert.Equal("delivered", (await MessageAsync(agent, ticket, id)).GetProperty("delivery").GetString());
    }

    [Fact]
    public async Task A_disabled_channel_sends_nothing_and_its_reply_waits_visibly_until_enabled()
    {
        var ticket = await OpenTicketAsync();
        using var admin = App.Admin();
        Assert.True((await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "Bridge", enabled = false, webhookUrl = _bridge.Url })).IsSuccessStatusCode);
        using var agent = await App.AgentAsync();

        var id = (await ReplyAsync(agent, ticket, "Wait for it")).GetProperty("id").GetGuid();

        var waiting = await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, id),
            m => m.TryGetProperty("deliveryError", out var e) && e.GetString() is { } text && text.Contains("disabled", StringComparison.Ordinal), what: "reply waiting");
        Assert.Equal("queued", waiting.GetProperty("delivery").GetString());
        Assert.Empty(_bridge.Requests);

        Assert.True((await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "Bridge", enabled = true, webhookUrl = _bridge.Url })).IsSuccessStatusCode);
        await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, id), m => m.GetProperty("delivery").GetString() == "sent", what: "sent after enabling");
        Assert.Single(_bridge.Requests);
    }

    [Fact]
    public async Task A_signed_receipt_marks_the_reply_delivered()
    {
        var ticket = await OpenTicketAsync();
        using var agent = await App.AgentAsync();
        var id = (await ReplyAsync(agent, ticket, "Receipt please")).GetProperty("id").GetGuid();
        await Eventually.WaitForAsync(() => MessageAsync(agent, ticket, id), m => m.GetProperty("delivery").GetString() == "sent", what: "sent");

        using var client = App.CreateClient();
        var receipt = await client.SendAsync(Signing.SignedPost("/api/v1/channels/bridge/receipts", CrmApp.ChannelSecret,
            JsonSerializer.Serialize(new { messageId = id, status = "delivered" })));

        Assert.Equal(HttpStatusCode.Accepted, receipt.StatusCode);
        Assert.Equal("delivered", (await MessageAsync(agent, ticket, id)).GetProperty("delivery").GetString());
    }
}
