using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.Api.Http;
using Crm.Service.Tests.Support;

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
        Assert.Contains("422", failed.GetProperty("deliveryError").GetString(), StringComparison.Ordinal);
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
