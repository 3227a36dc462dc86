using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>Queue sorts with keyset paging, bulk actions, the tags form, and personal API keys on the profile page.</summary>
public sealed class ConsoleQueueActionTests : AppTest
{
    private const string Agent = "agent@example.com";

    private async Task<long> ReceiveAsync(string id, string sender)
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name = sender }, subject = "Printer " + id, text = "help " + id });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    [Fact]
    public async Task Every_sort_pages_through_ties_without_losing_or_repeating_a_ticket()
    {
        // Many ties on purpose: pages of 2 end inside runs of equal times and priorities.
        var store = App.Services.GetRequiredService<ICrmStore>();
        var t0 = new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);
        var rows = Enumerable.Range(0, 11).Select(i => new TicketRecord
        {
            Number = 900_000 + i,
            Subject = "s" + i,
            Priority = (TicketPriority)(i % 3),
            CreatedAt = t0.AddMinutes(i / 4),
            UpdatedAt = t0.AddMinutes(i / 3),
        }).ToList();
        foreach (var row in rows)
            await store.CommitAsync(new WriteSet().Insert(row));
        var queries = App.Services.GetRequiredService<TicketQueries>();

        foreach (var sort in Enum.GetValues<TicketSort>())
        {
            var expected = (sort switch
            {
                TicketSort.Created => rows.OrderByDescending(r => r.CreatedAt).ThenByDescending(r => r.Number),
                TicketSort.Priority => rows.OrderByDescending(r => r.Priority).ThenByDescending(r => r.UpdatedAt).ThenByDescending(r => r.Number),
                _ => rows.OrderByDescending(r => r.UpdatedAt).ThenByDescending(r => r.Number),
            }).Select(r => r.Number).ToList();
            var seen = new List<long>();
            QueueCursor? after = null;
            for (var pages = 0; pages < 20; pages++)
            {
                var page = await queries.ListAsync(new TicketFilter(), sort, after, 2, CancellationToken.None);
                seen.AddRange(page.Items.Select(t => t.Number));
                if (page.NextCursor is null)
                    break;
                Assert.True(QueueCursor.TryDecode(page.NextCursor, sort, out var next));
                after = next;
            }
            Assert.Equal(expected, seen);
        }
        // A cursor of one order is not a cursor of another.
        var byCreated = (await queries.ListAsync(new TicketFilter(), TicketSort.Created, null, 2, CancellationToken.None)).NextCursor;
        Assert.False(QueueCursor.TryDecode(byCreated, TicketSort.Priority, out _));
        Assert.False(QueueCursor.TryDecode(byCreated, TicketSort.Updated, out _));
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        Assert.Equal(HttpStatusCode.BadRequest, (await agent.GetAsync($"/Queues/Open?sort=Priority&cursor={byCreated}")).StatusCode);
        var page1 = await agent.PageAsync("/Queues/Open?sort=Priority");
        Assert.Contains("sort=Priority", page1, StringComparison.Ordinal);
        Assert.True(page1.IndexOf("data-ticket=\"900008\"", StringComparison.Ordinal) < page1.IndexOf("data-ticket=\"900010\"", StringComparison.Ordinal),
            "priority High (900008) before Normal (900010)");
    }

    [Fact]
    public async Task Bulk_actions_assign_set_status_and_tag_the_selected_tickets_and_skip_what_the_agent_may_not_see()
    {
        var a = await ReceiveAsync("m-1", "alice");
        var b = await ReceiveAsync("m-2", "bob");
        var hidden = await ReceiveAsync("m-3", "carol");
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("vip", "VIP", restricted: true, [], CancellationToken.None);
        await App.Grains.GetGrain<ITicketGrain>(hidden).ChangeAsync(new TicketChange { Team = "vip" }, "test");
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        Dictionary<string, string> Form(string action, params (string, string)[] extra)
        {
            var form = new Dictionary<string, string> { ["Action"] = action };
            foreach (var (k, v) in extra)
                form[k] = v;
            return form;
        }
        async Task<HttpResponseMessage> BulkAsync(Dictionary<string, string> fields, params long[] numbers)
        {
            var html = await agent.PageAsync("/Queues/Open");
            var token = WebUtility.HtmlDecode(Regex.Match(html, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value);
            var pairs = fields.Select(f => new KeyValuePair<string, string>(f.Key, f.Value)).ToList();
            pairs.AddRange(numbers.Select(n => new KeyValuePair<string, string>("Selected", n.ToString())));
            pairs.Add(new("__RequestVerificationToken", token));
            return await agent.Client.PostAsync("/Queues/Open?handler=Bulk", new FormUrlEncodedContent(pairs));
        }

        var assign = await BulkAsync(Form("Assign", ("BulkAssignee", "me")), a, b, hidden);
        var status = await BulkAsync(Form("Status", ("BulkStatus", "Pending")), a, b);
        var tag = await BulkAsync(Form("Tag", ("BulkTag", "Billing")), a, b, hidden);
        var merge = await BulkAsync(Form("Merge", ("MergeInto", a.ToString())), b);
        var forged = await agent.PostWithoutTokenAsync("/Queues/Open?handler=Bulk", new() { ["Action"] = "Status", ["BulkStatus"] = "Closed", ["Selected"] = a.ToString() });

        Assert.All(new[] { assign, status, tag }, r => Assert.Equal(HttpStatusCode.Redirect, r.StatusCode));
        var tickets = await App.QueryAsync(db => Task.FromResult(db.Tickets.ToDictionary(t => t.Number)));
        foreach (var n in new[] { a, b })
        {
            Assert.Equal(Agent, tickets[n].Assignee);
            Assert.Equal(TicketStatus.Pending, tickets[n].Status);
            Assert.Equal(["billing"], tickets[n].Tags);
        }
        Assert.Null(tickets[hidden].Assignee);
        Assert.Empty(tickets[hidden].Tags);
        // Merge needs a Supervisor; the forged post has no token.
        Assert.Contains("/Account/AccessDenied", merge.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Null(tickets[b].MergedInto);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        var page = await agent.PageAsync("/Queues/Pending");
        Assert.Contains($"data-ticket=\"{a}\"", page, StringComparison.Ordinal);
        var audit = await App.QueryAsync(db => Task.FromResult(db.Audit.Where(x => x.EntityId == a.ToString() && x.Field == "assignee").Select(x => x.Actor).ToList()));
        Assert.Contains("user:" + Agent, audit);
    }

    [Fact]
    public async Task A_supervisor_merges_selected_tickets_in_bulk()
    {
        var a = await ReceiveAsync("m-1", "alice");
        var b = await ReceiveAsync("m-2", "alice2");
        // The same person wrote from two accounts: one customer, two tickets.
        var customers = await App.QueryAsync(db => Task.FromResult(db.Tickets.Where(t => t.Number == a || t.Number == b).OrderBy(t => t.Number).Select(t => t.CustomerId).ToList()));
        await App.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers).MergeCustomersAsync(customers[1], customers[0], "test");
        using var boss = await ConsoleBrowser.SignedInAsync(App, "boss@example.com", ConsoleRoles.Supervisor);
        var html = await boss.PageAsync("/Queues/Open");
        var token = WebUtility.HtmlDecode(Regex.Match(html, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value);

        var merged = await boss.Client.PostAsync("/Queues/Open?handler=Bulk", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Action"] = "Merge", ["MergeInto"] = a.ToString(), ["Selected"] = b.ToString(), ["__RequestVerificationToken"] = token,
        }));

        Assert.True(merged.StatusCode == HttpStatusCode.Redirect, $"{merged.StatusCode} {merged.Headers.Location} {await merged.Content.ReadAsStringAsync()}");
        Assert.Equal(a, await App.QueryAsync(db => Task.FromResult(db.Tickets.Single(t => t.Number == b).MergedInto)));
        Assert.Contains("1 changed", await boss.PageAsync("/Queues/Open"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_tags_form_replaces_a_tickets_tags_and_refuses_too_many()
    {
        var number = await ReceiveAsync("m-1", "alice");
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        var saved = await agent.SubmitAsync($"/Tickets/{number}", new() { ["TagsText"] = "Billing, urgent-ish ,billing" }, $"/Tickets/{number}?handler=Tags");
        var tooMany = await agent.SubmitAsync($"/Tickets/{number}", new() { ["TagsText"] = string.Join(",", Enumerable.Range(0, 51).Select(i => "t" + i)) }, $"/Tickets/{number}?handler=Tags");

        Assert.Equal(HttpStatusCode.Redirect, saved.StatusCode);
        var tags = await App.QueryAsync(db => Task.FromResult(db.Tickets.Single(t => t.Number == number).Tags));
        Assert.Equal(["billing", "urgent-ish"], tags.Order());
        Assert.Equal(HttpStatusCode.UnprocessableEntity, tooMany.StatusCode);
        var page = await agent.PageAsync($"/Tickets/{number}");
        Assert.Contains("href=\"/Queues/Open?tag=billing\"", page, StringComparison.Ordinal);
        Assert.Contains($"data-ticket=\"{number}\"", await agent.PageAsync("/Queues/Open?tag=urgent-ish"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_person_creates_a_key_shown_once_uses_it_lists_and_revokes_only_their_own()
    {
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);
        using var editor = await ConsoleBrowser.SignedInAsync(App, "kb@example.com", ConsoleRoles.KnowledgeEditor);

        var created = await agent.SubmitAsync("/Profile", new() { ["KeyLabel"] = "laptop script", ["KeyRole"] = "agent" }, "/Profile?handler=CreateKey");
        var html = await created.Content.ReadAsStringAsync();
        var key = Regex.Match(html, "<code id=\"created-key\">([^<]+)</code>").Groups[1].Value;
        var asAdmin = await agent.SubmitAsync("/Profile", new() { ["KeyLabel"] = "escalate", ["KeyRole"] = "admin" }, "/Profile?handler=CreateKey");
        var editorKey = await editor.SubmitAsync("/Profile", new() { ["KeyLabel"] = "x", ["KeyRole"] = "agent" }, "/Profile?handler=CreateKey");

        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        Assert.True(created.Headers.CacheControl!.NoStore);
        Assert.StartsWith("crm_", key, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, asAdmin.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, editorKey.StatusCode);
        using var api = App.CreateClient();
        api.DefaultRequestHeaders.Add("X-Api-Key", key);
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/api/v1/tickets")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await api.GetAsync("/api/v1/admin/api-keys")).StatusCode);
        var profile = await agent.PageAsync("/Profile");
        Assert.Contains(Agent + "/laptop script", profile, StringComparison.Ordinal);
        Assert.DoesNotContain(key, profile, StringComparison.Ordinal);
        var record = await App.QueryAsync(db => Task.FromResult(db.ApiKeys.Single(k => k.Name == Agent + "/laptop script")));

        // Someone else's key id revokes nothing; the owner's revoke works at once.
        var foreign = await editor.SubmitAsync("/Profile", new() { ["RevokeId"] = record.Id.ToString() }, "/Profile?handler=RevokeKey");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, foreign.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/api/v1/tickets")).StatusCode);
        var revoked = await agent.SubmitAsync("/Profile", new() { ["RevokeId"] = record.Id.ToString() }, "/Profile?handler=RevokeKey");
        Assert.Equal(HttpStatusCode.Redirect, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await api.GetAsync("/api/v1/tickets")).StatusCode);
    }

    [Fact]
    public async Task An_admin_manages_any_persons_keys_on_the_admin_page_and_an_agent_cannot()
    {
        await ConsoleBrowser.CreateUserAsync(App, Agent, ConsoleRoles.Agent);
        using var admin = await ConsoleBrowser.SignedInAsync(App, "admin@example.com", ConsoleRoles.Admin);
        using var agent = await ConsoleBrowser.SignedInAsync(App, "other@example.com", ConsoleRoles.Agent);

        var created = await admin.SubmitAsync("/Admin/Keys", new() { ["Person"] = Agent, ["KeyLabel"] = "crm sync", ["KeyRole"] = "agent" }, "/Admin/Keys?handler=Create");
        var key = Regex.Match(await created.Content.ReadAsStringAsync(), "<code id=\"created-key\">([^<]+)</code>").Groups[1].Value;
        var adminForAgent = await admin.SubmitAsync("/Admin/Keys", new() { ["Person"] = Agent, ["KeyLabel"] = "x", ["KeyRole"] = "admin" }, "/Admin/Keys?handler=Create");
        var record = await App.QueryAsync(db => Task.FromResult(db.ApiKeys.Single(k => k.Name == Agent + "/crm sync")));
        var byAgent = await agent.SubmitAsync("/Profile", new() { ["RevokeId"] = record.Id.ToString() }, "/Admin/Keys?handler=Revoke");
        var page = await admin.PageAsync("/Admin/Keys");
        var revoked = await admin.SubmitAsync("/Admin/Keys", new() { ["RevokeId"] = record.Id.ToString() }, "/Admin/Keys?handler=Revoke");

        Assert.StartsWith("crm_", key, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, adminForAgent.StatusCode);
        Assert.Contains("/Account/AccessDenied", byAgent.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Contains(Agent + "/crm sync", page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, revoked.StatusCode);
        Assert.NotNull(await App.QueryAsync(db => Task.FromResult(db.ApiKeys.Single(k => k.Id == record.Id).RevokedAt)));
        using var scope = App.Services.CreateScope();
        var owner = await scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>().FindByEmailAsync(Agent);
        Assert.Equal(owner!.Id, record.OwnerId);
    }

    [Fact]
    public async Task Quoted_text_is_collapsed_behind_a_toggle_and_own_text_stays_visible()
    {
        var response = await App.PostMessageAsync(new { messageId = "q-1", sender = new { id = "alice", name = "Alice" }, subject = "Re: Printer",
            text = "Still broken, see below.\n\nOn Mon, 23 Nov 2026 at 10:00, Support <help@example.com> wrote:\n> Did you restart it?\n> <script>x</script>" });
        response.EnsureSuccessStatusCode();
        var number = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        var page = await agent.PageAsync($"/Tickets/{number}");

        Assert.Matches(new Regex("<div class=\"body\">Still broken, see below.</div>\\s*<details class=\"quoted\">"), page);
        Assert.Contains("&gt; Did you restart it?", page, StringComparison.Ordinal);
        // The page trims with the email connector's ReplyTrimmer (quote and signature), as ReplyTrimmingTests checks on the corpora.
        Assert.Equal("only quotes", Crm.Connectors.Email.ReplyTrimmer.Trim("only quotes\n> x"));
        Assert.Equal("hi", Crm.Connectors.Email.ReplyTrimmer.Trim("hi\n> quoted\n> more"));
        Assert.Equal("> not a quote\nbecause text follows", Crm.Connectors.Email.ReplyTrimmer.Trim("> not a quote\nbecause text follows"));
        Assert.Equal("好的，谢谢", Crm.Connectors.Email.ReplyTrimmer.Trim("好的，谢谢\n\n王小明 <wang@example.com> 于2026年11月23日周一 10:00写道：\n> 请重启"));
    }

    [Fact]
    public async Task Admins_see_channel_accounts_with_health_and_last_error_and_agents_do_not()
    {
        await App.QueryAsync(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.ExecuteUpdateAsync(db.ChannelAccounts,
            u => u.SetProperty(c => c.LastErrorAt, DateTimeOffset.UtcNow).SetProperty(c => c.LastError, "<b>connection refused</b>")));
        using var admin = await ConsoleBrowser.SignedInAsync(App, "admin@example.com", ConsoleRoles.Admin);
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        var page = await admin.PageAsync("/Admin/Channels");

        Assert.Contains("data-channel=\"bridge\" data-health=\"failing\"", page, StringComparison.Ordinal);
        Assert.Contains("&lt;b&gt;connection refused&lt;/b&gt;", page, StringComparison.Ordinal);
        Assert.DoesNotContain(CrmApp.ChannelSecret, page, StringComparison.Ordinal);
        Assert.Contains("/Account/AccessDenied", (await agent.GetAsync("/Admin/Channels")).Headers.Location!.OriginalString, StringComparison.Ordinal);
    }
}
