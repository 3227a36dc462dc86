using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Replies;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Console;

/// <summary>Canned responses and macros: placeholders, personal and shared, the REST API, the console pages and bulk.</summary>
public sealed class ConsoleRepliesTests : AppTest
{
    private const string Agent = "ann.lee@example.com";

    private async Task<long> ReceiveAsync(string id, string sender, string name)
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name }, subject = "Parcel " + id, text = "where is it " + id });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private Task<List<string?>> OutboundAsync(long number) =>
        App.QueryAsync(db => db.Messages.Where(m => m.TicketNumber == number && m.Direction == MessageDirection.Outbound).Select(m => m.Text).ToListAsync());

    private Task<List<string?>> NotesAsync(long number) =>
        App.QueryAsync(db => db.Messages.Where(m => m.TicketNumber == number && m.Direction == MessageDirection.Note).Select(m => m.Text).ToListAsync());

    [Fact]
    public void Placeholders_fill_in_one_pass_and_unknown_names_are_reported()
    {
        var values = new PlaceholderValues("{{agent.email}} Smith", 10042, "Parcel", "Ann Lee", "ann@example.com");

        var text = Placeholders.Render("Hi {{customer.first_name}}, about {{ ticket.number }}: {{agent.name}} <{{agent.email}}> {{nope}}", values);

        // The customer's name is text, not a placeholder to fill again.
        Assert.Equal("Hi {{agent.email}}, about #10042: Ann Lee <ann@example.com> {{nope}}", text);
        Assert.Equal(["nope", "ticket.numbr"], Placeholders.Unknown("{{nope}} {{ticket.numbr}} {{ticket.number}}"));
        Assert.Equal("Hello customer", Placeholders.Render("Hello {{customer.name}}", values with { CustomerName = null }));
    }

    [Fact]
    public async Task The_api_keeps_personal_and_shared_apart_renders_for_a_ticket_and_applies_macros_in_bulk_once()
    {
        using var agent = await App.AgentAsync("agent-a");
        using var other = await App.AgentAsync("agent-b");
        using var admin = App.Admin();
        var ticket = await ReceiveAsync("m1", "c1", "Rita Moreno");
        var second = await ReceiveAsync("m2", "c2", "Sam");

        var refused = await agent.PostAsJsonAsync("/api/v1/canned-responses", new { shortcut = "x", title = "X", text = "x", shared = true });
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        var typo = await agent.PostAsJsonAsync("/api/v1/canned-responses", new { shortcut = "thanks", title = "Thanks", text = "Hi {{customer.nme}}" });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, typo.StatusCode);
        Assert.Contains("customer.nme", await typo.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var mine = await agent.PostAsJsonAsync("/api/v1/canned-responses", new { shortcut = "thanks", title = "Thanks", text = "Hi {{customer.first_name}}, about {{ticket.number}}." });
        Assert.Equal(HttpStatusCode.Created, mine.StatusCode);
        var mineId = (await mine.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        var shared = await admin.PostAsJsonAsync("/api/v1/canned-responses", new { shortcut = "hello", title = "Hello", text = "Hello!", shared = true });
        Assert.Equal(HttpStatusCode.Created, shared.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await agent.PostAsJsonAsync("/api/v1/canned-responses", new { shortcut = "thanks", title = "Again", text = "t" })).StatusCode);

        var agentList = await agent.GetFromJsonAsync<JsonElement>("/api/v1/canned-responses");
        var otherList = await other.GetFromJsonAsync<JsonElement>("/api/v1/canned-responses");
        Assert.Equal(["hello", "thanks"], agentList.EnumerateArray().Select(c => c.GetProperty("shortcut").GetString()).ToList());
        Assert.Equal(["hello"], otherList.EnumerateArray().Select(c => c.GetProperty("shortcut").GetString()).ToList());
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"/api/v1/tickets/{ticket}/canned-responses/{mineId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.DeleteAsync($"/api/v1/canned-responses/{mineId}")).StatusCode);
        var rendered = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}/canned-responses/{mineId}");
        Assert.Equal($"Hi Rita, about #{ticket}.", rendered.GetProperty("text").GetString());

        var badMacro = await agent.PostAsJsonAsync("/api/v1/macros", new { name = "bad", actions = new[] { new { kind = "status", value = "Sleeping" } } });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badMacro.StatusCode);
        var macro = await agent.PostAsJsonAsync("/api/v1/macros", new
        {
            name = "Parcel lost",
            actions = new[]
            {
                new { kind = "reply", value = "Dear {{customer.name}}, a new parcel is on its way." },
                new { kind = "status", value = "Pending" },
                new { kind = "priority", value = "High" },
                new { kind = "tag", value = "lost-parcel" },
                new { kind = "note", value = "Reshipped by macro on {{ticket.number}}" },
            },
        });
        Assert.Equal(HttpStatusCode.Created, macro.StatusCode);
        var macroId = (await macro.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        Assert.Equal(HttpStatusCode.NotFound, (await other.PostAsJsonAsync($"/api/v1/macros/{macroId}/apply", new { tickets = new[] { ticket } })).StatusCode);

        for (var attempt = 0; attempt < 2; attempt++)
        {
            using var apply = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/macros/{macroId}/apply") { Content = JsonContent.Create(new { tickets = new[] { ticket, second, 999_999L } }) };
            apply.Headers.Add("Idempotency-Key", "apply-1");
            var outcome = await agent.SendAsync(apply);
            Assert.Equal(HttpStatusCode.OK, outcome.StatusCode);
            var results = await outcome.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal([true, true, false], results.EnumerateArray().Select(r => r.GetProperty("applied").GetBoolean()).ToList());
        }

        var view = (await App.Grains.GetGrain<ITicketGrain>(ticket).GetAsync())!;
        Assert.Equal((TicketStatus.Pending, TicketPriority.High), (view.Status, view.Priority));
        Assert.Equal(["lost-parcel"], view.Tags);
        // The retried apply (same Idempotency-Key) sent each reply once; the notes are per apply.
        Assert.Equal(["Dear Rita Moreno, a new parcel is on its way."], await OutboundAsync(ticket));
        Assert.Equal(["Dear Sam, a new parcel is on its way."], await OutboundAsync(second));
        Assert.Contains($"Reshipped by macro on #{second}", await NotesAsync(second));
    }

    [Fact]
    public async Task An_agent_manages_own_canned_responses_and_macros_and_only_supervisors_share()
    {
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        using var supervisor = await ConsoleBrowser.SignedInAsync(App, "sue@example.com", ConsoleRoles.Supervisor);

        var shareAttempt = await agent.SubmitAsync("/Replies", new() { ["Shortcut"] = "x", ["Title"] = "X", ["Text"] = "x", ["Shared"] = "true" }, "/Replies?handler=Canned");
        // Forbidden: the console answers with its access-denied page.
        Assert.Equal(HttpStatusCode.Found, shareAttempt.StatusCode);
        Assert.Contains("/Account/AccessDenied", shareAttempt.Headers.Location!.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, await App.QueryAsync(db => db.CannedResponses.CountAsync()));
        var typo = await agent.SubmitAsync("/Replies", new() { ["Shortcut"] = "thanks", ["Title"] = "Thanks", ["Text"] = "Hi {{customer.nam}}" }, "/Replies?handler=Canned");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, typo.StatusCode);
        Assert.Contains("Unknown placeholder {{customer.nam}}", WebUtility.HtmlDecode(await typo.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await agent.SubmitAsync("/Replies",
            new() { ["Shortcut"] = "thanks", ["Title"] = "Thanks", ["Text"] = "Thanks {{customer.first_name}}! <b>{{agent.name}}</b>" }, "/Replies?handler=Canned")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await supervisor.SubmitAsync("/Replies",
            new() { ["Shortcut"] = "hello", ["Title"] = "Hello", ["Text"] = "Hello from {{agent.name}}", ["Shared"] = "true" }, "/Replies?handler=Canned")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await supervisor.SubmitAsync("/Replies", new()
        {
            ["MacroName"] = "Escalate",
            ["MacroActions"] = "priority: Urgent\nassignee: me\ntag: escalated\nnote: Escalated,\nsee the customer's last message.",
            ["MacroShared"] = "true",
        }, "/Replies?handler=Macro")).StatusCode);
        var badMacro = await agent.SubmitAsync("/Replies", new() { ["MacroName"] = "Bad", ["MacroActions"] = "explode: now" }, "/Replies?handler=Macro");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badMacro.StatusCode);

        // The supervisor does not see the agent's personal one; the agent sees both, and may not delete the shared one.
        var supervisorPage = await supervisor.PageAsync("/Replies");
        Assert.DoesNotContain("data-canned=\"thanks\"", supervisorPage, StringComparison.Ordinal);
        var shared = await App.QueryAsync(db => db.CannedResponses.SingleAsync(c => c.Shortcut == "hello"));
        Assert.Equal(HttpStatusCode.NotFound, (await agent.SubmitAsync("/Replies", [], $"/Replies?handler=DeleteCanned&id={shared.Id}")).StatusCode);

        // The ticket page offers both, filled for this ticket and encoded; the macro applies in one go.
        var ticket = await ReceiveAsync("m1", "c1", "Rita <script>alert(1)</script> Moreno");
        var page = await agent.PageAsync($"/Tickets/{ticket}");
        // Titles on the page; each text, filled for this ticket, from the page's handler as plain text (review F8).
        var thanks = await App.QueryAsync(db => db.CannedResponses.SingleAsync(c => c.Shortcut == "thanks"));
        Assert.Contains($"data-id=\"{thanks.Id}\"", page, StringComparison.Ordinal);
        Assert.Contains($"data-id=\"{shared.Id}\"", page, StringComparison.Ordinal);
        Assert.Equal("Thanks Rita! <b>Ann Lee</b>", await (await agent.GetAsync($"/Tickets/{ticket}?handler=CannedText&id={thanks.Id}")).Content.ReadAsStringAsync());
        Assert.Equal("Hello from Ann Lee", await (await agent.GetAsync($"/Tickets/{ticket}?handler=CannedText&id={shared.Id}")).Content.ReadAsStringAsync());
        Assert.DoesNotContain("<script>alert(1)", page, StringComparison.Ordinal);
        var macro = await App.QueryAsync(db => db.Macros.SingleAsync());
        var applied = await agent.SubmitAsync($"/Tickets/{ticket}", new() { ["MacroId"] = macro.Id.ToString() }, $"/Tickets/{ticket}?handler=Macro");
        Assert.Equal(HttpStatusCode.Redirect, applied.StatusCode);
        var view = (await App.Grains.GetGrain<ITicketGrain>(ticket).GetAsync())!;
        Assert.Equal((TicketPriority.Urgent, Agent), (view.Priority, view.Assignee));
        Assert.Equal(["escalated"], view.Tags);
        Assert.Equal(["Escalated,\nsee the customer's last message."], await NotesAsync(ticket));

        // In bulk from a queue, with per-ticket results.
        var a = await ReceiveAsync("m2", "c2", "A");
        var b = await ReceiveAsync("m3", "c3", "B");
        var bulk = await agent.SubmitAsync("/Queues/Open", new()
        {
            ["Selected"] = a.ToString(), ["Action"] = "Macro", ["BulkMacro"] = macro.Id.ToString(),
        }, "/Queues/Open?handler=Bulk");
        Assert.Equal(HttpStatusCode.Redirect, bulk.StatusCode);
        Assert.Contains("1 changed.", await agent.PageAsync("/Queues/Open"), StringComparison.Ordinal);
        Assert.Equal(TicketPriority.Urgent, (await App.Grains.GetGrain<ITicketGrain>(a).GetAsync())!.Priority);
        Assert.Equal(TicketPriority.Normal, (await App.Grains.GetGrain<ITicketGrain>(b).GetAsync())!.Priority);
    }
}
