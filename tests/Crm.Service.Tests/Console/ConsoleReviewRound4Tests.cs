using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>The console's fourth pass: review console2 F6-F11 (the findings still open after the third pass).</summary>
public sealed class ConsoleReviewRound4Tests : AppTest
{
    private const string Member = "member@example.com";
    private const string Outsider = "outsider@example.com";

    private async Task<long> ReceiveAsync(string id, string sender)
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name = "Rita Moreno" }, subject = "Secret " + id, text = "confidential " + id });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private Task<string> UserIdAsync(string email) => App.UserIdAsync(email);

    private Task<HttpClient> PersonalKeyAsync(ConsoleBrowser person) => person.PersonalKeyAsync(App);

    [Fact]
    public async Task F6_a_personal_key_neither_fills_canned_responses_for_nor_applies_macros_to_a_restricted_teams_ticket()
    {
        using var member = await ConsoleBrowser.SignedInAsync(App, Member, ConsoleRoles.Agent);
        using var outsider = await ConsoleBrowser.SignedInAsync(App, Outsider, ConsoleRoles.Agent);
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("legal", "Legal", true, [await UserIdAsync(Member)], CancellationToken.None);
        var secret = await ReceiveAsync("f6", "alice");
        await App.Grains.GetGrain<ITicketGrain>(secret).ChangeAsync(new TicketChange { Team = "legal" }, "test");
        using var admin = App.Admin();
        var canned = await admin.PostAsJsonAsync("/api/v1/canned-responses", new { shortcut = "hi", title = "Hi", text = "{{customer.name}}: {{ticket.subject}}", shared = true });
        var cannedId = (await canned.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        var macro = await admin.PostAsJsonAsync("/api/v1/macros", new { name = "Close", actions = new[] { new { kind = "reply", value = "Done" }, new { kind = "assignee", value = "me" } }, shared = true });
        var macroId = (await macro.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        using var outsiderKey = await PersonalKeyAsync(outsider);
        using var memberKey = await PersonalKeyAsync(member);

        var leaked = await outsiderKey.GetAsync($"/api/v1/tickets/{secret}/canned-responses/{cannedId}");
        var applied = await (await outsiderKey.PostAsJsonAsync($"/api/v1/macros/{macroId}/apply", new { tickets = new[] { secret } })).Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.NotFound, leaked.StatusCode);
        Assert.DoesNotContain("Secret", await leaked.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(applied[0].GetProperty("applied").GetBoolean());
        Assert.Equal("no such ticket", applied[0].GetProperty("error").GetString());
        Assert.Equal(0, await App.QueryAsync(db => db.Messages.CountAsync(m => m.TicketNumber == secret && m.Direction == MessageDirection.Outbound)));
        Assert.Null((await App.Grains.GetGrain<ITicketGrain>(secret).GetAsync())!.Assignee);
        // The team's member (and a system key) still can.
        Assert.Equal(HttpStatusCode.OK, (await memberKey.GetAsync($"/api/v1/tickets/{secret}/canned-responses/{cannedId}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync($"/api/v1/tickets/{secret}/canned-responses/{cannedId}")).StatusCode);
    }

    [Fact]
    public async Task F10_a_tag_queue_asked_for_another_order_is_read_by_latest_activity_and_says_so()
    {
        using var agent = await ConsoleBrowser.SignedInAsync(App, "ann@example.com", ConsoleRoles.Agent);
        var older = await ReceiveAsync("f10a", "c1");
        var newer = await ReceiveAsync("f10b", "c2");
        await App.Grains.GetGrain<ITicketGrain>(newer).ChangeAsync(new TicketChange { AddTags = ["vip"] }, "test");
        // The older ticket gets the tag last: it has the latest activity.
        await App.Grains.GetGrain<ITicketGrain>(older).ChangeAsync(new TicketChange { AddTags = ["vip"] }, "test");

        var page = await agent.PageAsync("/Queues/Open?tag=vip&sort=Created");
        var plain = await agent.PageAsync("/Queues/Open?sort=Created");

        Assert.Contains("id=\"sort-notice\"", page, StringComparison.Ordinal);
        Assert.True(page.IndexOf($"/Tickets/{older}\"", StringComparison.Ordinal) < page.IndexOf($"/Tickets/{newer}\"", StringComparison.Ordinal), "latest activity first");
        Assert.Contains("<option value=\"Updated\" selected=\"selected\">", page, StringComparison.Ordinal);
        // Without a tag the asked order stands.
        Assert.DoesNotContain("id=\"sort-notice\"", plain, StringComparison.Ordinal);
        Assert.True(plain.IndexOf($"/Tickets/{newer}\"", StringComparison.Ordinal) < plain.IndexOf($"/Tickets/{older}\"", StringComparison.Ordinal), "newest created first");
    }

    private sealed class CommandLog : Microsoft.EntityFrameworkCore.Diagnostics.DbCommandInterceptor
    {
        public List<string> Texts { get; } = [];

        public override ValueTask<Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult<int>> NonQueryExecutingAsync(System.Data.Common.DbCommand command,
            Microsoft.EntityFrameworkCore.Diagnostics.CommandEventData eventData, Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            lock (Texts)
                Texts.Add(command.CommandText);
            return ValueTask.FromResult(result);
        }
    }

    [Fact]
    public async Task F9_a_new_message_patches_the_channel_projection_without_reading_the_tickets_messages()
    {
        var ticket = await ReceiveAsync("f9", "c9");
        var log = new CommandLog();
        var options = new DbContextOptionsBuilder<Infrastructure.Store.CrmDbContext>()
            .UseSqlite(App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Infrastructure.Store.StoreOptions>>().Value.ConnectionString)
            .AddInterceptors(log).Options;
        await using var db = new Infrastructure.Store.CrmDbContext(options);
        var touched = new Infrastructure.Queries.ProjectionTouches { ticket };
        touched.Channels.Add((ticket, "telegram-x"));

        await Infrastructure.Queries.TicketProjections.RefreshAsync(db, touched);

        Assert.NotEmpty(log.Texts);
        Assert.DoesNotContain(log.Texts, text => text.Contains("Messages", StringComparison.Ordinal));
        var rows = await App.QueryAsync(d => d.TicketChannels.Where(c => c.TicketNumber == ticket).OrderBy(c => c.ChannelAccountId).ToListAsync());
        var updatedAt = (await App.Grains.GetGrain<ITicketGrain>(ticket).GetAsync())!.UpdatedAt;
        Assert.Equal(["bridge", "telegram-x"], rows.Select(r => r.ChannelAccountId));
        Assert.All(rows, r => Assert.Equal(updatedAt, r.UpdatedAt));
    }

    [Fact]
    public async Task F8_the_ticket_page_lists_canned_titles_and_fetches_one_filled_text_on_insert()
    {
        using var agent = await ConsoleBrowser.SignedInAsync(App, "ann@example.com", ConsoleRoles.Agent);
        using var other = await ConsoleBrowser.SignedInAsync(App, "bob@example.com", ConsoleRoles.Agent);
        var ticket = await ReceiveAsync("f8", "c8");
        using var admin = App.Admin();
        var big = new string('x', 19_000);
        Guid first = default;
        for (var i = 0; i < 60; i++)
        {
            var created = await admin.PostAsJsonAsync("/api/v1/canned-responses", new { shortcut = "p" + i, title = "Policy " + i, text = "Dear {{customer.first_name}}, " + big, shared = true });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            if (i == 0)
                first = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        }
        var own = await agent.SubmitAsync("/Replies", new() { ["Shortcut"] = "mine", ["Title"] = "Mine", ["Text"] = "only mine" }, "/Replies?handler=Canned");
        Assert.Equal(HttpStatusCode.Redirect, own.StatusCode);
        var mine = await App.QueryAsync(db => db.CannedResponses.Where(c => c.Shortcut == "mine").Select(c => c.Id).SingleAsync());

        var page = await agent.PageAsync($"/Tickets/{ticket}");
        var text = await agent.GetAsync($"/Tickets/{ticket}?handler=CannedText&id={first}");
        var foreign = await other.GetAsync($"/Tickets/{ticket}?handler=CannedText&id={mine}");

        // 60 texts of 19 KB would be over 1 MB of page; titles only keep it small.
        Assert.True(page.Length < 200_000, $"the ticket page is {page.Length} characters");
        Assert.Contains($"data-id=\"{first}\"", page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, text.StatusCode);
        Assert.Equal("text/plain", text.Content.Headers.ContentType!.MediaType);
        Assert.Equal("Dear Rita, " + big, await text.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);
    }
}

/// <summary>Review console2 F7: a merge cut between its two halves is finished from the console.</summary>
public sealed class ConsoleUnfinishedMergeTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private CrmApp _app = null!;

    public async Task InitializeAsync()
    {
        _app = new CrmApp(_data.Path) { FaultyStore = true };
        await _app.CreateApiChannelAsync();
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        _data.Dispose();
    }

    private async Task<long> ReceiveAsync(string id, string thread)
    {
        var response = await _app.PostMessageAsync(new { messageId = id, threadKey = thread, sender = new { id = "same-customer", name = "Kim" }, text = "late " + id });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    [Fact]
    public async Task F7_a_supervisor_finishes_a_merge_whose_target_half_failed()
    {
        var target = await ReceiveAsync("u1", "t1");
        var source = await ReceiveAsync("u2", "t2");
        using var supervisor = await ConsoleBrowser.SignedInAsync(_app, "sue@example.com", ConsoleRoles.Supervisor, ConsoleRoles.Agent);
        using var agent = await ConsoleBrowser.SignedInAsync(_app, "al@example.com", ConsoleRoles.Agent);
        // The target's half (AbsorbAsync) fails once, after the source's half committed: as a crash between them.
        _app.Store.FailNextCommitWhere(writes => writes.Operations.OfType<Crm.Service.Grains.Storage.InsertRow>()
            .Any(i => i.Record is Crm.Service.Grains.Records.AuditRecord { Action: "merged-in" }));

        var cut = await supervisor.SubmitAsync($"/Tickets/{source}", new() { ["MergeTarget"] = target.ToString() }, $"/Tickets/{source}?handler=Merge");
        var sourceConversations = (await _app.Grains.GetGrain<ITicketGrain>(source).GetAsync())!.ConversationIds;
        Assert.NotEqual(HttpStatusCode.Redirect, cut.StatusCode);
        Assert.Equal(1, _app.Store.Refused);
        Assert.Equal(target, (await _app.Grains.GetGrain<ITicketGrain>(source).GetAsync())!.MergedInto);
        Assert.DoesNotContain(sourceConversations[0], (await _app.Grains.GetGrain<ITicketGrain>(target).GetAsync())!.ConversationIds);

        var page = await supervisor.PageAsync($"/Tickets/{source}");
        Assert.Contains("id=\"finish-merge-form\"", page, StringComparison.Ordinal);
        Assert.DoesNotContain("id=\"finish-merge-form\"", await agent.PageAsync($"/Tickets/{source}"), StringComparison.Ordinal);
        var refused = await agent.SubmitAsync($"/Tickets/{source}", new(), $"/Tickets/{source}?handler=FinishMerge");
        Assert.Contains("/Account/AccessDenied", refused.Headers.Location?.ToString() ?? "", StringComparison.Ordinal);

        var finished = await supervisor.SubmitAsync($"/Tickets/{source}", new(), $"/Tickets/{source}?handler=FinishMerge");

        Assert.Equal((HttpStatusCode.Redirect, $"/Tickets/{target}"), (finished.StatusCode, finished.Headers.Location?.ToString()));
        Assert.Contains(sourceConversations[0], (await _app.Grains.GetGrain<ITicketGrain>(target).GetAsync())!.ConversationIds);
        Assert.DoesNotContain("id=\"finish-merge-form\"", await supervisor.PageAsync($"/Tickets/{source}"), StringComparison.Ordinal);
    }
}
