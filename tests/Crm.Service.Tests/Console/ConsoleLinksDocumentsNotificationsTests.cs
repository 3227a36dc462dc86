using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>Issue 17 (console5): linked tickets (console and REST, access-checked, idempotent, audited), customer
/// documents (upload, list, safe download, delete, limits, roles) and notification settings honored by the hub.</summary>
public sealed class ConsoleLinksDocumentsNotificationsTests : AppTest
{
    private const string Agent = "agent@example.com";
    private const string Outsider = "outsider@example.com";
    private const string Boss = "boss@example.com";

    internal override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Documents:MaxBytes"] = "1000",
        ["Documents:MaxPerCustomer"] = "2",
    };

    private Task<(long Number, Guid Customer)> ReceiveAsync(string id, string sender) => App.ReceiveAsync(id, sender, "Subject ", "text ");

    private Task<string> UserIdAsync(string email) => App.UserIdAsync(email);

    private Task<HttpClient> PersonalKeyAsync(ConsoleBrowser browser) => browser.PersonalKeyAsync(App);

    private Task<List<Crm.Service.Grains.Records.AuditRecord>> AuditAsync(long number) =>
        App.QueryAsync(db => Task.FromResult(db.Audit.Where(a => a.EntityType == "ticket" && a.EntityId == number.ToString()).ToList()));

    [Fact]
    public async Task Tickets_are_linked_and_unlinked_in_the_console_shown_on_both_tickets_audited_and_idempotent()
    {
        var (a, _) = await ReceiveAsync("m-1", "alice");
        var (b, _) = await ReceiveAsync("m-2", "bob");
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        // Anti-forgery: a post without the token changes nothing.
        var forged = await agent.PostWithoutTokenAsync($"/Tickets/{a}?handler=Link", new() { ["LinkTarget"] = b.ToString() });
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Equal(0, await App.QueryAsync(db => Task.FromResult(db.TicketLinks.Count())));

        for (var i = 0; i < 2; i++)
        {
            var linked = await agent.SubmitAsync($"/Tickets/{a}", new() { ["LinkTarget"] = b.ToString(), ["LinkRelation"] = "duplicate" }, $"/Tickets/{a}?handler=Link");
            Assert.Equal(HttpStatusCode.Redirect, linked.StatusCode);
        }
        Assert.Equal(1, await App.QueryAsync(db => Task.FromResult(db.TicketLinks.Count())));
        var pageA = await agent.PageAsync($"/Tickets/{a}");
        var pageB = await agent.PageAsync($"/Tickets/{b}");
        Assert.Contains($"data-link=\"{b}\"", pageA, StringComparison.Ordinal);
        Assert.Contains($"data-link=\"{a}\"", pageB, StringComparison.Ordinal);
        Assert.Single(await AuditAsync(a), x => x.Action == "linked" && x.Field == "duplicate-of" && x.NewValue == $"#{b}" && x.Actor == "user:" + Agent);
        Assert.Single(await AuditAsync(b), x => x.Action == "linked" && x.Field == "duplicated-by" && x.NewValue == $"#{a}");

        // Linking a ticket to itself or to one that does not exist is refused with a message.
        var self = await agent.SubmitAsync($"/Tickets/{a}", new() { ["LinkTarget"] = a.ToString() }, $"/Tickets/{a}?handler=Link");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, self.StatusCode);

        var unlinked = await agent.SubmitAsync($"/Tickets/{b}", new() { ["UnlinkTarget"] = a.ToString() }, $"/Tickets/{b}?handler=Unlink");
        Assert.Equal(HttpStatusCode.Redirect, unlinked.StatusCode);
        Assert.Equal(0, await App.QueryAsync(db => Task.FromResult(db.TicketLinks.Count())));
        Assert.DoesNotContain($"data-link=\"{b}\"", await agent.PageAsync($"/Tickets/{a}"), StringComparison.Ordinal);
        Assert.Single(await AuditAsync(a), x => x.Action == "unlinked" && x.NewValue == $"#{b}");
    }

    [Fact]
    public async Task An_agent_can_neither_link_to_nor_see_a_linked_ticket_of_a_restricted_team_they_are_not_in_through_console_or_REST()
    {
        var (open, _) = await ReceiveAsync("m-1", "alice");
        var (secret, _) = await ReceiveAsync("m-2", "bob");
        var (other, _) = await ReceiveAsync("m-3", "carol");
        using var outsider = await ConsoleBrowser.SignedInAsync(App, Outsider, ConsoleRoles.Agent);
        using var boss = await ConsoleBrowser.SignedInAsync(App, Boss, ConsoleRoles.Supervisor);
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("vip", "VIP", true, [await UserIdAsync(Boss)], CancellationToken.None);
        await App.Grains.GetGrain<ITicketGrain>(secret).ChangeAsync(new TicketChange { Team = "vip" }, "test");
        using var outsiderApi = await PersonalKeyAsync(outsider);
        using var bossApi = await PersonalKeyAsync(boss);

        // Console: refused as if it did not exist, nothing stored.
        var console = await outsider.SubmitAsync($"/Tickets/{open}", new() { ["LinkTarget"] = secret.ToString() }, $"/Tickets/{open}?handler=Link");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, console.StatusCode);
        // REST: 404 for the hidden ticket on either side.
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.PostAsJsonAsync($"/api/v1/tickets/{open}/links", new { ticket = secret })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.PostAsJsonAsync($"/api/v1/tickets/{secret}/links", new { ticket = open })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.GetAsync($"/api/v1/tickets/{secret}/links")).StatusCode);
        Assert.Equal(0, await App.QueryAsync(db => Task.FromResult(db.TicketLinks.Count())));

        // The supervisor links through REST (idempotent: 201 then 200, one row) ...
        Assert.Equal(HttpStatusCode.Created, (await bossApi.PostAsJsonAsync($"/api/v1/tickets/{open}/links", new { ticket = secret })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await bossApi.PostAsJsonAsync($"/api/v1/tickets/{open}/links", new { ticket = secret })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await bossApi.PostAsJsonAsync($"/api/v1/tickets/{open}/links", new { ticket = other, relation = "related" })).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await bossApi.PostAsJsonAsync($"/api/v1/tickets/{secret}/links", new { ticket = open, relation = "duplicate" })).StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await bossApi.PostAsJsonAsync($"/api/v1/tickets/{open}/links", new { ticket = other, relation = "parent" })).StatusCode);
        Assert.Equal(2, await App.QueryAsync(db => Task.FromResult(db.TicketLinks.Count())));
        var bossSees = await bossApi.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{open}/links");
        Assert.Equal(new[] { other, secret }.Order(), bossSees.EnumerateArray().Select(l => l.GetProperty("ticket").GetInt64()).Order());

        // ... and the outsider sees only the link to the ticket they may see, in REST and on the page.
        var outsiderSees = await outsiderApi.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{open}/links");
        Assert.Equal([other], outsiderSees.EnumerateArray().Select(l => l.GetProperty("ticket").GetInt64()));
        var page = await outsider.PageAsync($"/Tickets/{open}");
        Assert.DoesNotContain($"data-link=\"{secret}\"", page, StringComparison.Ordinal);
        Assert.Contains($"data-link=\"{other}\"", page, StringComparison.Ordinal);
        // Nor can the outsider unlink it.
        Assert.Equal(HttpStatusCode.NotFound, (await outsiderApi.DeleteAsync($"/api/v1/tickets/{open}/links/{secret}")).StatusCode);
        Assert.Equal(2, await App.QueryAsync(db => Task.FromResult(db.TicketLinks.Count())));

        Assert.Equal(HttpStatusCode.NoContent, (await bossApi.DeleteAsync($"/api/v1/tickets/{secret}/links/{open}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await bossApi.DeleteAsync($"/api/v1/tickets/{secret}/links/{open}")).StatusCode);
        Assert.Equal(1, await App.QueryAsync(db => Task.FromResult(db.TicketLinks.Count())));
    }

    private static MultipartFormDataContent Upload(string token, string fileName, byte[] content)
    {
        var form = new MultipartFormDataContent();
        form.Add(new StringContent(token), "__RequestVerificationToken");
        var file = new ByteArrayContent(content);
        file.Headers.ContentType = new MediaTypeHeaderValue("text/html");
        form.Add(file, "DocumentFile", fileName);
        return form;
    }

    private static async Task<string> TokenAsync(ConsoleBrowser browser, string page)
    {
        var html = await browser.PageAsync(page);
        return WebUtility.HtmlDecode(Regex.Match(html, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value);
    }

    [Fact]
    public async Task Customer_documents_are_uploaded_listed_downloaded_safely_limited_and_deleted_by_role()
    {
        var (_, customer) = await ReceiveAsync("m-1", "alice");
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        using var other = await ConsoleBrowser.SignedInAsync(App, Outsider, ConsoleRoles.Agent);
        using var boss = await ConsoleBrowser.SignedInAsync(App, Boss, ConsoleRoles.Supervisor);
        using var editor = await ConsoleBrowser.SignedInAsync(App, "editor@example.com", ConsoleRoles.KnowledgeEditor);
        var page = $"/Customers/{customer}";
        var html = "<script>alert(1)</script>"u8.ToArray();

        // Anti-forgery and role: without the token, or as a KnowledgeEditor, nothing is stored.
        var forged = await agent.Client.PostAsync($"{page}?handler=UploadDocument", Upload("", "x.html", html));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, (await editor.GetAsync(page)).StatusCode);
        Assert.Equal(0, await App.QueryAsync(db => Task.FromResult(db.CustomerDocuments.Count())));

        var uploaded = await agent.Client.PostAsync($"{page}?handler=UploadDocument", Upload(await TokenAsync(agent, page), "../../evil\u202Egnp.html", html));
        Assert.Equal(HttpStatusCode.Redirect, uploaded.StatusCode);
        var document = await App.QueryAsync(db => Task.FromResult(db.CustomerDocuments.Single()));
        Assert.Equal((customer, html.Length, "user:" + Agent), (document.CustomerId, (int)document.Length, document.UploadedBy));
        Assert.DoesNotContain("/", document.FileName, StringComparison.Ordinal);
        Assert.DoesNotContain("\u202E", document.FileName, StringComparison.Ordinal);
        Assert.Contains($"data-document=\"{document.Id}\"", await agent.PageAsync(page), StringComparison.Ordinal);

        var download = await agent.GetAsync($"{page}?handler=Document&document={document.Id}");
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal("application/octet-stream", download.Content.Headers.ContentType!.MediaType);
        Assert.Equal("attachment", download.Content.Headers.ContentDisposition!.DispositionType);
        Assert.Equal("nosniff", download.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal(html, await download.Content.ReadAsByteArrayAsync());
        // Another customer's page does not serve it.
        var (_, stranger) = await ReceiveAsync("m-2", "bob");
        Assert.Equal(HttpStatusCode.NotFound, (await agent.GetAsync($"/Customers/{stranger}?handler=Document&document={document.Id}")).StatusCode);

        // Limits: too large, and too many (2 per customer in this test).
        var large = await agent.Client.PostAsync($"{page}?handler=UploadDocument", Upload(await TokenAsync(agent, page), "big.bin", new byte[1001]));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, large.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await agent.Client.PostAsync($"{page}?handler=UploadDocument", Upload(await TokenAsync(agent, page), "two.txt", "two"u8.ToArray()))).StatusCode);
        var third = await agent.Client.PostAsync($"{page}?handler=UploadDocument", Upload(await TokenAsync(agent, page), "three.txt", "three"u8.ToArray()));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, third.StatusCode);
        Assert.Equal(2, await App.QueryAsync(db => Task.FromResult(db.CustomerDocuments.Count(d => d.CustomerId == customer))));

        // Delete: not another agent's document; the uploader or a supervisor may.
        var refused = await other.SubmitAsync(page, new() { ["DocumentId"] = document.Id.ToString() }, $"{page}?handler=DeleteDocument");
        Assert.NotEqual(HttpStatusCode.Redirect, refused.StatusCode);
        Assert.Equal(2, await App.QueryAsync(db => Task.FromResult(db.CustomerDocuments.Count())));
        var deleted = await boss.SubmitAsync(page, new() { ["DocumentId"] = document.Id.ToString() }, $"{page}?handler=DeleteDocument");
        Assert.Equal(HttpStatusCode.Redirect, deleted.StatusCode);
        Assert.Equal(1, await App.QueryAsync(db => Task.FromResult(db.CustomerDocuments.Count())));
        Assert.Equal(HttpStatusCode.NotFound, (await agent.GetAsync($"{page}?handler=Document&document={document.Id}")).StatusCode);
    }

    [Fact]
    public async Task A_notification_kind_turned_off_on_the_profile_is_not_pushed_and_new_tickets_in_my_team_are_when_turned_on()
    {
        var (first, _) = await ReceiveAsync("m-1", "alice");
        var (second, _) = await ReceiveAsync("m-2", "bob");
        using var boss = await ConsoleBrowser.SignedInAsync(App, Boss, ConsoleRoles.Supervisor);
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("sales", "Sales", false, [await UserIdAsync(Agent)], CancellationToken.None);

        // Anti-forgery on the settings form.
        Assert.Equal(HttpStatusCode.BadRequest, (await agent.PostWithoutTokenAsync("/Profile?handler=Notifications", new() { ["NotifyMention"] = "true" })).StatusCode);
        // Mentions off; assignments on; new tickets in my teams on.
        var saved = await agent.SubmitAsync("/Profile", new() { ["NotifyAssignment"] = "true", ["NotifyFollowUpDue"] = "true", ["NotifyNewTicket"] = "true" }, "/Profile?handler=Notifications");
        Assert.Equal(HttpStatusCode.Redirect, saved.StatusCode);
        var profile = await agent.PageAsync("/Profile");
        Assert.Matches("name=\"NotifyMention\" value=\"true\" ?>", profile);
        Assert.Matches("name=\"NotifyNewTicket\" value=\"true\" checked=\"checked\"", profile);

        await using var hub = agent.AgentHub(App);
        var notified = new ConcurrentQueue<AgentNotification>();
        hub.On<AgentNotification>("Notify", n => notified.Enqueue(n));
        await hub.StartAsync();

        await boss.SubmitAsync($"/Tickets/{first}", new() { ["NoteText"] = "@agent please look" }, $"/Tickets/{first}?handler=Note");
        await boss.SubmitAsync($"/Tickets/{second}", new() { ["NewAssignee"] = Agent, ["NewTeam"] = "", ["OriginalAssignee"] = "", ["OriginalTeam"] = "", ["OriginalStatus"] = "New", ["OriginalPriority"] = "Normal", ["NewStatus"] = "New", ["NewPriority"] = "Normal" }, $"/Tickets/{second}?handler=Change");
        // A new ticket routed to the agent's team.
        var opened = await App.Grains.GetGrain<ITicketGrain>(await App.QueryAsync(db => Task.FromResult(db.Tickets.Max(t => t.Number))) + 1000).OpenAsync(new TicketOpening
        {
            Subject = "new in sales",
            CustomerId = (await App.QueryAsync(db => Task.FromResult(db.Tickets.First(t => t.Number == first)))).CustomerId,
            ConversationId = Guid.NewGuid(),
            ConversationKey = "test:new-in-sales",
            Team = "sales",
            Actor = "test",
        });

        await Eventually.WaitForAsync(() => Task.FromResult(notified.ToArray()),
            n => n.Any(x => x.Kind == "assigned" && x.Ticket == second) && n.Any(x => x.Kind == "new-ticket" && x.Ticket == opened.Number), what: "assignment and new-ticket notifications");
        // The mention was sent before the assignment, through the same hub: had it been pushed, it would be here.
        Assert.DoesNotContain(notified, x => x.Kind == "mentioned");

        // A ticket created without a team and routed into the team a moment later is new in the team too (review CT2).
        var (routed, _) = await ReceiveAsync("m-routed", "dora");
        await App.Grains.GetGrain<ITicketGrain>(routed).ChangeAsync(new TicketChange { Team = "sales" }, "routing");
        await Eventually.WaitForAsync(() => Task.FromResult(notified.ToArray()), n => n.Any(x => x.Kind == "new-ticket" && x.Ticket == routed),
            TimeSpan.FromSeconds(60), "the new-ticket notification of a ticket routed into the team");
    }
}
