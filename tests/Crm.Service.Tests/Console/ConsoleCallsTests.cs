using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>Issue 17, "Log a call" (console6): a call on a ticket is a message of the phone channel (never sent: no
/// outbox row), a call on a customer is an event of the customer's timeline; the number is linked to the customer's
/// phone identity unless another customer holds it (then it stays and the answer says so). REST and console forms.</summary>
public sealed class ConsoleCallsTests : AppTest
{
    private const string Agent = "agent@example.com";

    private Task<(long Number, Guid Customer)> ReceiveAsync(string id, string sender) => App.ReceiveAsync(id, sender, "Subject ", "text ");

    private Task<Guid?> PhoneHolderAsync(string normalized) =>
        App.QueryAsync(db => db.Identities.Where(i => i.Key == "phone:" + normalized).Select(i => (Guid?)i.CustomerId).SingleOrDefaultAsync());

    private static async Task AssertInvalidAsync(HttpResponseMessage response, string field)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, $"expected 422 for {field}, got {(int)response.StatusCode}: {body}");
        Assert.Equal(field, JsonDocument.Parse(body).RootElement.GetProperty("field").GetString());
    }

    private static HttpRequestMessage Post(string path, object body, string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        if (key is not null)
            request.Headers.Add("Idempotency-Key", key);
        return request;
    }

    [Fact]
    public async Task A_call_logged_on_a_ticket_through_REST_is_a_phone_message_sent_nowhere_idempotent_validated_and_links_the_number()
    {
        var (ticket, customer) = await ReceiveAsync("m-1", "alice");
        using var agent = await App.AgentAsync();
        var call = new { direction = "out", phone = "+1 (555) 010-2030", time = "2025-03-04T10:15:00Z", durationSeconds = 330, summary = "Explained the refund.", result = "resolved" };

        var first = await agent.SendAsync(Post($"/api/v1/tickets/{ticket}/calls", call, "call-1"));
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        var body = (await first.Content.ReadFromJsonAsync<JsonElement>())!;
        var entry = body.GetProperty("entry");
        Assert.Equal("phone", entry.GetProperty("channel").GetString());
        Assert.True(entry.GetProperty("isCall").GetBoolean());
        Assert.Contains("Call out: +15550102030, 2025-03-04 10:15 UTC, 5:30", entry.GetProperty("text").GetString(), StringComparison.Ordinal);
        Assert.Contains("Result: resolved", entry.GetProperty("text").GetString(), StringComparison.Ordinal);
        Assert.False(body.GetProperty("phone").GetProperty("heldByAnother").GetBoolean());

        // A retry with the same key is the same call; the same key with another call is refused.
        var retry = await agent.SendAsync(Post($"/api/v1/tickets/{ticket}/calls", call, "call-1"));
        Assert.Equal(HttpStatusCode.Created, retry.StatusCode);
        Assert.Equal(entry.GetProperty("id").GetGuid(), (await retry.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("entry").GetProperty("id").GetGuid());
        await AssertInvalidAsync(await agent.SendAsync(Post($"/api/v1/tickets/{ticket}/calls", new { direction = "in", phone = "+15550102030" }, "call-1")), "Idempotency-Key");

        // Validation names the field.
        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/calls", new { phone = "+15550102030" }), "direction");
        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/calls", new { direction = "in", phone = "call me" }), "phone");
        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/calls", new { direction = "in", phone = "+15550102030", durationSeconds = -1 }), "durationSeconds");
        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/calls", new { direction = "in", phone = "+15550102030", time = "2999-01-01T00:00:00Z" }), "time");
        Assert.Equal(HttpStatusCode.NotFound, (await agent.PostAsJsonAsync("/api/v1/tickets/999999/calls", new { direction = "in", phone = "+15550102030" })).StatusCode);

        // One message on the phone channel, no conversation, nothing to send.
        var messages = await App.QueryAsync(db => db.Messages.Where(m => m.TicketNumber == ticket && m.ChannelAccountId == PhoneCalls.Channel).ToListAsync());
        var stored = Assert.Single(messages);
        Assert.Null(stored.ConversationId);
        Assert.Equal((MessageDirection.Outbound, DeliveryStatus.None), (stored.Direction, stored.Delivery));
        Assert.False(await App.QueryAsync(db => db.Outbox.AnyAsync(o => o.MessageId == stored.Id)));
        // The number (normalized as everywhere) is now the customer's phone identity.
        Assert.Equal(customer, await PhoneHolderAsync("+15550102030"));
        var timeline = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}/timeline");
        Assert.Contains(timeline.GetProperty("items").EnumerateArray(), e => e.GetProperty("isCall").GetBoolean());
    }

    [Fact]
    public async Task A_call_on_a_customer_without_a_ticket_shows_in_its_timeline_and_a_number_held_by_another_customer_is_not_moved()
    {
        var (_, alice) = await ReceiveAsync("m-1", "alice");
        var (_, bob) = await ReceiveAsync("m-2", "bob");
        using var agent = await App.AgentAsync();

        var logged = await agent.SendAsync(Post($"/api/v1/customers/{alice}/calls", new { direction = "in", phone = "+44 20 7946 0000", durationSeconds = 60, summary = "Asked about <b>prices</b>." }, "c-1"));
        Assert.Equal(HttpStatusCode.Created, logged.StatusCode);
        var body = await logged.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("call.in", body.GetProperty("event").GetProperty("type").GetString());
        Assert.Equal(alice, await PhoneHolderAsync("+442079460000"));
        // Idempotent: the same key stores one event.
        Assert.Equal(HttpStatusCode.Created, (await agent.SendAsync(Post($"/api/v1/customers/{alice}/calls", new { direction = "in", phone = "+44 20 7946 0000", durationSeconds = 60, summary = "Asked about <b>prices</b>." }, "c-1"))).StatusCode);
        Assert.Equal(1, await App.QueryAsync(db => db.CustomerEvents.CountAsync(e => e.CustomerId == alice)));
        // No ticket and no message.
        Assert.Equal(2, await App.QueryAsync(db => db.Tickets.CountAsync()));
        Assert.False(await App.QueryAsync(db => db.Messages.AnyAsync(m => m.ChannelAccountId == PhoneCalls.Channel)));

        // Bob called from Alice's number: the call is Bob's, the number stays Alice's, and the answer says so.
        var shared = await agent.PostAsJsonAsync($"/api/v1/customers/{bob}/calls", new { direction = "in", phone = "+442079460000" });
        Assert.Equal(HttpStatusCode.Created, shared.StatusCode);
        var phone = (await shared.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("phone");
        Assert.True(phone.GetProperty("heldByAnother").GetBoolean());
        Assert.Equal(alice, phone.GetProperty("customerId").GetGuid());
        Assert.Equal(alice, await PhoneHolderAsync("+442079460000"));

        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/customers/{alice}/calls", new { direction = "sideways", phone = "+442079460000" }), "direction");
        Assert.Equal(HttpStatusCode.NotFound, (await agent.PostAsJsonAsync($"/api/v1/customers/{Guid.NewGuid()}/calls", new { direction = "in", phone = "+442079460000" })).StatusCode);

        // The customer page shows the call in the customer's timeline, encoded.
        using var console = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        var page = await console.PageAsync($"/Customers/{alice}");
        Assert.Contains("Call in: +442079460000", WebUtility.HtmlDecode(page), StringComparison.Ordinal);
        Assert.Contains("Asked about &lt;b&gt;prices&lt;/b&gt;.", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Calls_are_logged_from_the_ticket_and_customer_pages_with_anti_forgery_once_per_form_and_a_held_number_is_shown()
    {
        var (ticket, customer) = await ReceiveAsync("m-1", "alice");
        var (_, bob) = await ReceiveAsync("m-2", "bob");
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        var fields = new Dictionary<string, string>
        {
            ["CallRequestId"] = Guid.NewGuid().ToString("N"),
            ["CallDirection"] = "in",
            ["CallPhone"] = "+49 30 1234567",
            ["CallTime"] = "2025-05-06T07:08",
            ["CallDuration"] = "2:05",
            ["CallResult"] = "call back tomorrow",
            ["CallSummary"] = "Wants the invoice again.",
        };

        var forged = await agent.PostWithoutTokenAsync($"/Tickets/{ticket}?handler=Call", fields);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.False(await App.QueryAsync(db => db.Messages.AnyAsync(m => m.ChannelAccountId == PhoneCalls.Channel)));

        // The same rendered form posted twice logs one call.
        for (var i = 0; i < 2; i++)
            Assert.Equal(HttpStatusCode.Redirect, (await agent.SubmitAsync($"/Tickets/{ticket}", new(fields), $"/Tickets/{ticket}?handler=Call")).StatusCode);
        var message = await App.QueryAsync(db => db.Messages.SingleAsync(m => m.ChannelAccountId == PhoneCalls.Channel));
        Assert.Equal(("user:" + Agent, MessageDirection.Inbound), (message.Author, message.Direction));
        Assert.Equal(customer, await PhoneHolderAsync("+49301234567"));
        var page = await agent.PageAsync($"/Tickets/{ticket}");
        Assert.Contains("Call in: +49301234567, 2025-05-06 07:08 UTC, 2:05", WebUtility.HtmlDecode(page), StringComparison.Ordinal);
        Assert.Contains("entry d-Inbound call", page, StringComparison.Ordinal);

        // A bad duration is refused with the form kept.
        var bad = await agent.SubmitAsync($"/Tickets/{ticket}", new(fields) { ["CallRequestId"] = Guid.NewGuid().ToString("N"), ["CallDuration"] = "soon" }, $"/Tickets/{ticket}?handler=Call");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, bad.StatusCode);

        // On Bob's customer page, with Alice's number: logged for Bob, the number stays Alice's, and the page says so.
        var onBob = await agent.SubmitAsync($"/Customers/{bob}", new(fields) { ["CallRequestId"] = Guid.NewGuid().ToString("N") }, $"/Customers/{bob}?handler=Call");
        Assert.Equal(HttpStatusCode.Redirect, onBob.StatusCode);
        var bobPage = await agent.PageAsync(onBob.Headers.Location!.OriginalString);
        Assert.Contains("id=\"call-notice\"", bobPage, StringComparison.Ordinal);
        Assert.Contains($"/Customers/{customer}", bobPage, StringComparison.Ordinal);
        Assert.Contains("Wants the invoice again.", bobPage, StringComparison.Ordinal);
        Assert.Equal(customer, await PhoneHolderAsync("+49301234567"));
        Assert.Equal(1, await App.QueryAsync(db => db.CustomerEvents.CountAsync(e => e.CustomerId == bob && e.Type == "call.in")));
    }

    /// <summary>Review CX1: the form's "Answered" box says whether the call connected. Unticked, a call that rang two
    /// minutes with no result is not the agent's response (the duration rule would have taken it); ticked, it is.</summary>
    [Fact]
    public async Task The_call_forms_Answered_box_decides_whether_the_call_is_the_agents_response()
    {
        var (ticket, _) = await ReceiveAsync("cx1-1", "alice");
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        Assert.Contains("id=\"CallConnected\"", await agent.PageAsync($"/Tickets/{ticket}"), StringComparison.Ordinal);
        Dictionary<string, string> Fields() => new()
        {
            ["CallRequestId"] = Guid.NewGuid().ToString("N"), ["CallDirection"] = "out", ["CallPhone"] = "+49 30 7654321", ["CallDuration"] = "2:00",
        };
        var grain = App.Grains.GetGrain<ITicketGrain>(ticket);

        Assert.Equal(HttpStatusCode.Redirect, (await agent.SubmitAsync($"/Tickets/{ticket}", Fields(), $"/Tickets/{ticket}?handler=Call")).StatusCode);
        var missed = (await grain.GetAsync())!;
        Assert.Equal((TicketStatus.Open, (DateTimeOffset?)null, (DateTimeOffset?)null), (missed.Status, missed.FirstResponseAt, missed.LastAgentReplyAt));

        Assert.Equal(HttpStatusCode.Redirect, (await agent.SubmitAsync($"/Tickets/{ticket}", new(Fields()) { ["CallConnected"] = "true" }, $"/Tickets/{ticket}?handler=Call")).StatusCode);
        Assert.NotNull((await grain.GetAsync())!.FirstResponseAt);
        var texts = await App.QueryAsync(db => db.Messages.Where(m => m.TicketNumber == ticket && m.ChannelAccountId == PhoneCalls.Channel)
            .Select(m => m.Text ?? "").ToListAsync());
        Assert.Equal(2, texts.Count);
        Assert.Single(texts, t => t.Contains("\nNot answered", StringComparison.Ordinal));
        Assert.Single(texts, t => t.Contains("\nAnswered", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_calls_idempotency_key_finds_its_call_after_a_customer_merge_and_is_refused_on_another_customer()
    {
        var (_, a) = await ReceiveAsync("m-1", "alice");
        var (_, b) = await ReceiveAsync("m-2", "bob");
        var (_, c) = await ReceiveAsync("m-3", "carol");
        using var agent = await App.AgentAsync();
        var call = new { direction = "in", phone = "+44 20 7946 0001", durationSeconds = 60, summary = "Order question." };
        var first = await agent.SendAsync(Post($"/api/v1/customers/{a}/calls", call, "k-1"));
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        var id = (await first.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("event").GetProperty("id").GetGuid();

        // The merge takes the call along (review CS3), and a retry, to the source or to the target, is the same call.
        await App.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers).MergeCustomersAsync(a, b, "test");
        Assert.Equal(1, await App.QueryAsync(db => db.CustomerEvents.CountAsync(e => e.CustomerId == b)));
        foreach (var target in new[] { a, b })
        {
            var retry = await agent.SendAsync(Post($"/api/v1/customers/{target}/calls", call, "k-1"));
            Assert.Equal(HttpStatusCode.Created, retry.StatusCode);
            Assert.Equal(id, (await retry.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("event").GetProperty("id").GetGuid());
        }
        // The same key on another customer is another call: refused.
        await AssertInvalidAsync(await agent.SendAsync(Post($"/api/v1/customers/{c}/calls", call, "k-1")), "Idempotency-Key");
        Assert.Equal(1, await App.QueryAsync(db => db.CustomerEvents.CountAsync(e => e.Type.StartsWith("call."))));
        using var console = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        Assert.Contains("Order question.", await console.PageAsync($"/Customers/{b}"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Only_a_phone_number_is_linked_and_a_call_an_hour_ahead_is_refused()
    {
        var (_, alice) = await ReceiveAsync("m-1", "alice");
        using var agent = await App.AgentAsync();
        // Words, or more than the form's 40 characters, are not a phone number (review CS4).
        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/customers/{alice}/calls", new { direction = "in", phone = "ext 123" }), "phone");
        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/customers/{alice}/calls", new { direction = "in", phone = "order 4711, call back" }), "phone");
        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/customers/{alice}/calls", new { direction = "in", phone = "+1 555 010 2030" + new string(' ', 30) + "1" }), "phone");
        // A short number (an extension) is logged but made nobody's identity.
        var shortNumber = await agent.PostAsJsonAsync($"/api/v1/customers/{alice}/calls", new { direction = "in", phone = "123" });
        Assert.Equal(HttpStatusCode.Created, shortNumber.StatusCode);
        Assert.Equal(JsonValueKind.Null, (await shortNumber.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("phone").ValueKind);
        Assert.False(await App.QueryAsync(db => db.Identities.AnyAsync(i => i.Key == "phone:123" || i.Key == "phone:4711")));
        // "Not in the future" allows a few minutes of clock skew, not hours (review CS6).
        var now = App.Services.GetRequiredService<TimeProvider>().GetUtcNow();
        await AssertInvalidAsync(await agent.PostAsJsonAsync($"/api/v1/customers/{alice}/calls", new { direction = "in", phone = "+15550102030", time = now.AddHours(2) }), "time");
        Assert.Equal(HttpStatusCode.Created, (await agent.PostAsJsonAsync($"/api/v1/customers/{alice}/calls", new { direction = "in", phone = "+15550102030", time = now.AddMinutes(1) })).StatusCode);
    }

    [Fact]
    public async Task A_failed_link_after_the_call_is_stored_answers_201_without_phone_and_stores_one_call()
    {
        var (_, alice) = await ReceiveAsync("m-1", "alice");
        using var agent = await App.AgentAsync();
        // The identity's insert fails in the real store (an error that is no unique key): the call is already committed.
        await App.QueryAsync(db => db.Database.ExecuteSqlRawAsync(
            "CREATE TRIGGER fail_identity BEFORE INSERT ON Identities BEGIN SELECT abs(-9223372036854775808); END;"));
        var logged = await agent.PostAsJsonAsync($"/api/v1/customers/{alice}/calls", new { direction = "in", phone = "+15550109999" });
        Assert.Equal(HttpStatusCode.Created, logged.StatusCode);
        Assert.Equal(JsonValueKind.Null, (await logged.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("phone").ValueKind);
        Assert.Equal(1, await App.QueryAsync(db => db.CustomerEvents.CountAsync(e => e.CustomerId == alice && e.Type == "call.in")));
        Assert.False(await App.QueryAsync(db => db.Identities.AnyAsync(i => i.Key == "phone:+15550109999")));
    }
}
