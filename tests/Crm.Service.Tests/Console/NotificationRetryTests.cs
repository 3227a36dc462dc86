using System.Collections.Concurrent;
using System.Data.Common;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>
/// The queue counters move before the notices are pushed. When the push fails (a busy database while reading who wants
/// the notice), the change feed hands the batch again, and the counters find nothing new: the notice must still go out
/// (review LD7).
/// </summary>
public sealed class NotificationRetryTests : IDisposable
{
    private const string Agent = "agent@example.com";
    private readonly TempDirectory _data = new();

    public void Dispose() => _data.Dispose();

    /// <summary>Fails the next read of the notification settings once armed: the store is real, only this read breaks.</summary>
    private sealed class FailNextSettingsRead : DbCommandInterceptor, ICrmStoreInterceptor
    {
        private int _armed;
        public int Fired;
        /// <summary>Runs as the read fails.</summary>
        public Action? OnFire;

        /// <summary>Fails the read after the next <paramref name="passing"/> ones.</summary>
        public void Arm(int passing = 0) => Volatile.Write(ref _armed, passing + 1);

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            if (command.CommandText.Contains("\"NotificationSettings\"", StringComparison.Ordinal) && Volatile.Read(ref _armed) > 0 && Interlocked.Decrement(ref _armed) == 0)
            {
                Interlocked.Increment(ref Fired);
                OnFire?.Invoke();
                throw new InvalidOperationException("injected: the notification settings could not be read");
            }
            return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
        }
    }

    [Fact]
    public async Task An_assignment_and_a_new_team_ticket_are_notified_when_their_first_push_failed()
    {
        var fault = new FailNextSettingsRead();
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?> { ["ChangeFeed:FirstRetryDelay"] = "00:00:00.200" },
            services: services => services.AddSingleton<ICrmStoreInterceptor>(fault));
        await app.CreateApiChannelAsync();
        var posted = await app.PostMessageAsync(new { messageId = "m-1", sender = new { id = "alice", name = "Alice" }, subject = "Printer", text = "help" });
        posted.EnsureSuccessStatusCode();
        var body = await posted.Content.ReadFromJsonAsync<JsonElement>();
        var ticket = body.GetProperty("ticketNumber").GetInt64();
        using var agent = await ConsoleBrowser.SignedInAsync(app, Agent, ConsoleRoles.Agent);
        string agentId;
        using (var scope = app.Services.CreateScope())
            agentId = (await scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>().FindByEmailAsync(Agent))!.Id;
        await app.Services.GetRequiredService<TeamDirectory>().SaveAsync("sales", "Sales", false, [agentId], CancellationToken.None);
        await agent.SubmitAsync("/Profile", new() { ["NotifyAssignment"] = "true", ["NotifyNewTicket"] = "true" }, "/Profile?handler=Notifications");
        await using var hub = agent.AgentHub(app);
        var notified = new ConcurrentQueue<AgentNotification>();
        hub.On<AgentNotification>("Notify", n => notified.Enqueue(n));
        await hub.StartAsync();

        fault.Arm();
        await app.Grains.GetGrain<ITicketGrain>(ticket).ChangeAsync(new TicketChange { Assignee = Agent }, "test");
        await Eventually.WaitForAsync(() => Task.FromResult(notified.ToArray()), n => n.Any(x => x.Kind == "assigned" && x.Ticket == ticket),
            TimeSpan.FromSeconds(60), "the assignment notice after its first push failed");
        Assert.Equal(1, Volatile.Read(ref fault.Fired));

        fault.Arm();
        var opened = await app.Grains.GetGrain<ITicketGrain>(ticket + 1000).OpenAsync(new TicketOpening
        {
            Subject = "new in sales",
            CustomerId = body.GetProperty("customerId").GetGuid(),
            ConversationId = Guid.NewGuid(),
            ConversationKey = "test:new-in-sales",
            Team = "sales",
            Actor = "test",
        });
        await Eventually.WaitForAsync(() => Task.FromResult(notified.ToArray()), n => n.Any(x => x.Kind == "new-ticket" && x.Ticket == opened.Number),
            TimeSpan.FromSeconds(60), "the new-ticket notice after its first push failed");
        Assert.Equal(2, Volatile.Read(ref fault.Fired));
        Assert.Single(notified, x => x.Kind == "assigned" && x.Ticket == ticket);
    }

    private async Task<(CrmApp App, FailNextSettingsRead Fault, long First, long Second)> TwoTicketsAsync(string gatherDelay, string firstRetryDelay)
    {
        var fault = new FailNextSettingsRead();
        var app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            // One batch for commits made close together, so both assignments are notified by one push.
            ["ChangeFeed:GatherDelay"] = gatherDelay,
            ["ChangeFeed:FirstRetryDelay"] = firstRetryDelay,
        }, services: services => services.AddSingleton<ICrmStoreInterceptor>(fault));
        await app.CreateApiChannelAsync();
        var (first, _) = await app.ReceiveAsync("m-1", "alice", "Printer", "help");
        var (second, _) = await app.ReceiveAsync("m-2", "bob", "Router", "help");
        return (app, fault, first, second);
    }

    private static async Task<(ConsoleBrowser Browser, HubConnection Hub, ConcurrentQueue<AgentNotification> Notices)> AgentWantingAssignmentsAsync(CrmApp app, string email)
    {
        var browser = await ConsoleBrowser.SignedInAsync(app, email, ConsoleRoles.Agent);
        await browser.SubmitAsync("/Profile", new() { ["NotifyAssignment"] = "true" }, "/Profile?handler=Notifications");
        var hub = browser.AgentHub(app);
        var notices = new ConcurrentQueue<AgentNotification>();
        hub.On<AgentNotification>("Notify", n => notices.Enqueue(n));
        await hub.StartAsync();
        return (browser, hub, notices);
    }

    [Fact]
    public async Task A_batch_retried_after_its_second_notice_failed_does_not_send_the_first_again()
    {
        var (app, fault, first, second) = await TwoTicketsAsync("00:00:02", "00:00:00.200");
        await using var _ = app;
        var (annBrowser, annHub, ann) = await AgentWantingAssignmentsAsync(app, "ann@example.com");
        var (benBrowser, benHub, ben) = await AgentWantingAssignmentsAsync(app, "ben@example.com");
        using (annBrowser) await using (annHub) using (benBrowser) await using (benHub)
        {
            // Where console-live stood when the push failed: at or before the head read now, the failed batch held both
            // assignments (the first notice sent, the second failed), which is the case this test is about (review LG9).
            var status = app.Services.GetRequiredService<Crm.Service.Infrastructure.Changes.ChangeFeedStatus>();
            var headBefore = await app.Services.GetRequiredService<Crm.Service.Infrastructure.Changes.IChangeFeed>().LastSequenceAsync();
            long? cursorAtFailure = null;
            fault.OnFire = () => cursorAtFailure = status.Consumers.Single(c => c.Name == "console-live").Cursor;
            fault.Arm(passing: 1);
            await Task.WhenAll(
                app.Grains.GetGrain<ITicketGrain>(first).ChangeAsync(new TicketChange { Assignee = "ann@example.com" }, "test"),
                app.Grains.GetGrain<ITicketGrain>(second).ChangeAsync(new TicketChange { Assignee = "ben@example.com" }, "test"));
            await Eventually.WaitForAsync(() => Task.FromResult(ann.Count + ben.Count), count => count >= 2, TimeSpan.FromSeconds(60), "both assignment notices");
            Assert.Equal(1, Volatile.Read(ref fault.Fired));
            Assert.True(cursorAtFailure <= headBefore, $"both assignments must be in the batch that failed (console-live was at {cursorAtFailure}, the head before them {headBefore})");
            // Let a duplicate (if any) arrive: a later change's notice is pushed after the retried batch's.
            await app.Grains.GetGrain<ITicketGrain>(first).ChangeAsync(new TicketChange { Assignee = "ben@example.com" }, "test");
            await Eventually.WaitForAsync(() => Task.FromResult(ben.Count(n => n.Ticket == first)), count => count == 1, TimeSpan.FromSeconds(60), "the later notice");
            Assert.Single(ann, n => n.Kind == "assigned" && n.Ticket == first);
            Assert.Single(ben, n => n.Kind == "assigned" && n.Ticket == second);
        }
    }

    [Fact]
    public async Task A_ticket_reassigned_while_its_notice_waited_for_a_retry_is_not_announced_to_the_previous_assignee()
    {
        var (app, fault, first, _) = await TwoTicketsAsync("00:00:00.100", "00:00:03");
        await using var _ = app;
        var (annBrowser, annHub, ann) = await AgentWantingAssignmentsAsync(app, "ann@example.com");
        var (benBrowser, benHub, ben) = await AgentWantingAssignmentsAsync(app, "ben@example.com");
        using (annBrowser) await using (annHub) using (benBrowser) await using (benHub)
        {
            fault.Arm();
            await app.Grains.GetGrain<ITicketGrain>(first).ChangeAsync(new TicketChange { Assignee = "ann@example.com" }, "test");
            await Eventually.WaitForAsync(() => Task.FromResult(Volatile.Read(ref fault.Fired)), fired => fired == 1, TimeSpan.FromSeconds(60), "the first push to fail");
            await app.Grains.GetGrain<ITicketGrain>(first).ChangeAsync(new TicketChange { Assignee = "ben@example.com" }, "test");

            await Eventually.WaitForAsync(() => Task.FromResult(ben.Count(n => n.Ticket == first)), count => count == 1, TimeSpan.FromSeconds(60), "the new assignee's notice");
            Assert.Empty(ann);
        }
    }
}
