using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Console;

/// <summary>Notes, macros and tag changes that a retry, a double click or a re-rendered form never applies twice
/// (issue 17 third pass; review console2 F1, F2, F4).</summary>
public sealed class ConsoleIdempotencyTests : AppTest
{
    private const string Agent = "ann.lee@example.com";

    private async Task<long> ReceiveAsync(string id, string sender)
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name = "Rita Moreno" }, subject = "Parcel " + id, text = "where is it " + id });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private Task<List<string?>> TextsAsync(long number, MessageDirection direction) =>
        App.QueryAsync(db => db.Messages.Where(m => m.TicketNumber == number && m.Direction == direction).OrderBy(m => m.CreatedAt).Select(m => m.Text).ToListAsync());

    private async Task<Guid> MacroAsync(HttpClient client, params object[] actions)
    {
        var created = await client.PostAsJsonAsync("/api/v1/macros", new { name = "m" + Guid.NewGuid().ToString("N")[..6], actions, shared = true });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private static async Task<JsonElement> ApplyAsync(HttpClient client, Guid macro, long ticket, string key)
    {
        using var apply = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/macros/{macro}/apply") { Content = JsonContent.Create(new { tickets = new[] { ticket } }) };
        apply.Headers.Add("Idempotency-Key", key);
        var response = await client.SendAsync(apply);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>())[0];
    }

    [Fact]
    public async Task A_note_with_an_idempotency_key_is_stored_once_and_the_key_with_another_text_is_refused()
    {
        using var agent = await App.AgentAsync();
        var ticket = await ReceiveAsync("n1", "c1");

        for (var attempt = 0; attempt < 2; attempt++)
        {
            using var post = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/tickets/{ticket}/notes") { Content = JsonContent.Create(new { text = "called back" }) };
            post.Headers.Add("Idempotency-Key", "note-1");
            Assert.Equal(HttpStatusCode.Created, (await agent.SendAsync(post)).StatusCode);
        }
        using var other = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/tickets/{ticket}/notes") { Content = JsonContent.Create(new { text = "something else" }) };
        other.Headers.Add("Idempotency-Key", "note-1");
        var refused = await agent.SendAsync(other);
        using var plain = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/tickets/{ticket}/notes") { Content = JsonContent.Create(new { text = "called back" }) };
        Assert.Equal(HttpStatusCode.Created, (await agent.SendAsync(plain)).StatusCode);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        // Without a key each post is a new note (as before).
        Assert.Equal(["called back", "called back"], await TextsAsync(ticket, MessageDirection.Note));
    }

    [Fact]
    public async Task The_note_form_posted_twice_adds_one_note()
    {
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        var ticket = await ReceiveAsync("n2", "c2");
        var form = Guid.NewGuid().ToString("N");

        for (var attempt = 0; attempt < 2; attempt++)
            Assert.Equal(HttpStatusCode.Redirect, (await agent.SubmitAsync($"/Tickets/{ticket}", new() { ["NoteText"] = "left a voicemail", ["RequestId"] = form }, $"/Tickets/{ticket}?handler=Note")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await agent.SubmitAsync($"/Tickets/{ticket}", new() { ["NoteText"] = "left a voicemail", ["RequestId"] = Guid.NewGuid().ToString("N") }, $"/Tickets/{ticket}?handler=Note")).StatusCode);

        Assert.Equal(["left a voicemail", "left a voicemail"], await TextsAsync(ticket, MessageDirection.Note));
    }

    [Fact]
    public async Task A_retried_macro_adds_its_notes_once_and_does_not_put_its_changes_back_over_newer_ones()
    {
        using var agent = await App.AgentAsync();
        using var admin = App.Admin();
        var ticket = await ReceiveAsync("n3", "c3");
        var macro = await MacroAsync(admin, new { kind = "status", value = "Pending" }, new { kind = "note", value = "waiting for the carrier" }, new { kind = "note", value = "second note" });

        Assert.True((await ApplyAsync(agent, macro, ticket, "k1")).GetProperty("applied").GetBoolean());
        // A colleague opens it again before the client's retry arrives.
        await App.Grains.GetGrain<ITicketGrain>(ticket).ChangeAsync(new TicketChange { Status = TicketStatus.Open }, "user:bob@example.com");
        Assert.True((await ApplyAsync(agent, macro, ticket, "k1")).GetProperty("applied").GetBoolean());

        Assert.Equal(["waiting for the carrier", "second note"], await TextsAsync(ticket, MessageDirection.Note));
        Assert.Equal(TicketStatus.Open, (await App.Grains.GetGrain<ITicketGrain>(ticket).GetAsync())!.Status);
    }

    [Fact]
    public async Task A_macro_that_cannot_add_its_tag_sends_nothing_a_reposted_form_replies_once_and_a_new_form_replies_again()
    {
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        using var api = App.Admin();
        var full = await ReceiveAsync("n4", "c4");
        await App.Grains.GetGrain<ITicketGrain>(full).ChangeAsync(new TicketChange { Tags = [.. Enumerable.Range(0, 50).Select(i => "t" + i)] }, "test");
        var macro = await MacroAsync(api, new { kind = "reply", value = "Hi {{customer.first_name}}, solved." }, new { kind = "tag", value = "solved" });

        var refused = await agent.SubmitAsync($"/Tickets/{full}", new() { ["MacroId"] = macro.ToString() }, $"/Tickets/{full}?handler=Macro");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains("was not applied", WebUtility.HtmlDecode(await refused.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        Assert.Empty(await TextsAsync(full, MessageDirection.Outbound));

        // The refused page keeps the posted form id, so applying again from it never makes a second reply.
        var posted = Guid.NewGuid().ToString("N");
        var again = await agent.SubmitAsync($"/Tickets/{full}", new() { ["MacroId"] = macro.ToString(), ["RequestId"] = posted }, $"/Tickets/{full}?handler=Macro");
        Assert.Contains($"name=\"RequestId\" value=\"{posted}\"", await again.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // One form posted twice (double click, re-post): one reply.
        var ticket = await ReceiveAsync("n5", "c5");
        var form = Guid.NewGuid().ToString("N");
        for (var attempt = 0; attempt < 2; attempt++)
            Assert.Equal(HttpStatusCode.Redirect, (await agent.SubmitAsync($"/Tickets/{ticket}", new() { ["MacroId"] = macro.ToString(), ["RequestId"] = form }, $"/Tickets/{ticket}?handler=Macro")).StatusCode);
        Assert.Equal(["Hi Rita, solved."], await TextsAsync(ticket, MessageDirection.Outbound));
        Assert.Equal(["solved"], (await App.Grains.GetGrain<ITicketGrain>(ticket).GetAsync())!.Tags);

        // A freshly rendered form is a new apply, even though the customer has not written since (review N2): the
        // agent's "Nudge" a few days later is sent again, not silently swallowed.
        Assert.Equal(HttpStatusCode.Redirect, (await agent.SubmitAsync($"/Tickets/{ticket}", new() { ["MacroId"] = macro.ToString(), ["RequestId"] = Guid.NewGuid().ToString("N") }, $"/Tickets/{ticket}?handler=Macro")).StatusCode);
        Assert.Equal(["Hi Rita, solved.", "Hi Rita, solved."], await TextsAsync(ticket, MessageDirection.Outbound));
    }

    [Fact]
    public async Task The_api_applies_a_macro_again_with_a_new_or_no_idempotency_key_and_once_per_key()
    {
        using var agent = await App.AgentAsync();
        using var admin = App.Admin();
        var ticket = await ReceiveAsync("n7", "c7");
        var macro = await MacroAsync(admin, new { kind = "reply", value = "Do you still need help?" }, new { kind = "status", value = "Pending" });

        Assert.True((await ApplyAsync(agent, macro, ticket, "nudge-1")).GetProperty("applied").GetBoolean());
        Assert.True((await ApplyAsync(agent, macro, ticket, "nudge-1")).GetProperty("applied").GetBoolean());
        Assert.Single(await TextsAsync(ticket, MessageDirection.Outbound));
        await App.Grains.GetGrain<ITicketGrain>(ticket).ChangeAsync(new TicketChange { Status = TicketStatus.Open }, "user:bob@example.com");

        Assert.True((await ApplyAsync(agent, macro, ticket, "nudge-2")).GetProperty("applied").GetBoolean());
        var unkeyed = await agent.PostAsJsonAsync($"/api/v1/macros/{macro}/apply", new { tickets = new[] { ticket } });
        Assert.Equal(HttpStatusCode.OK, unkeyed.StatusCode);

        Assert.Equal(3, (await TextsAsync(ticket, MessageDirection.Outbound)).Count);
        Assert.Equal(TicketStatus.Pending, (await App.Grains.GetGrain<ITicketGrain>(ticket).GetAsync())!.Status);
        using var bad = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/macros/{macro}/apply") { Content = JsonContent.Create(new { tickets = new[] { ticket } }) };
        bad.Headers.TryAddWithoutValidation("Idempotency-Key", new string('k', 201));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await agent.SendAsync(bad)).StatusCode);
    }

    [Fact]
    public async Task Added_tags_join_the_tags_the_ticket_has_when_the_change_runs()
    {
        var ticket = await ReceiveAsync("n6", "c6");
        var grain = App.Grains.GetGrain<ITicketGrain>(ticket);
        var readBefore = (await grain.GetAsync())!.Tags;

        // Someone adds "vip" after the macro or the bulk action read the tags.
        await grain.ChangeAsync(new TicketChange { AddTags = ["vip"] }, "user:bob@example.com");
        var added = await grain.ChangeAsync(new TicketChange { AddTags = ["Refund"] }, "user:ann@example.com");
        var removed = await grain.ChangeAsync(new TicketChange { RemoveTags = ["vip"] }, "user:ann@example.com");

        Assert.Empty(readBefore);
        Assert.Equal(["refund", "vip"], added.Tags);
        Assert.Equal(["refund"], removed.Tags);
    }
}
