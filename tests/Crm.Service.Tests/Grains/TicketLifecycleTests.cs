using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Grains;

[Collection(ClusterCollection.Name)]
public sealed class TicketLifecycleTests(TestClusterFixture fixture)
{
    private const string Agent = "agent:ann";

    private ITicketGrain Ticket(long number) => fixture.Grains.GetGrain<ITicketGrain>(number);

    private Task<List<string>> HistoryAsync(long number)
    {
        var key = number.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return fixture.QueryAsync(db => db.Audit.Where(a => a.EntityType == "ticket" && a.EntityId == key).OrderBy(a => a.At)
            .Select(a => a.Action + ":" + (a.Field ?? "") + ":" + (a.NewValue ?? "")).ToListAsync());
    }

    private Task<int> AutoCloseRemindersAsync(long number)
    {
        var grainId = Ticket(number).GetGrainId().ToString();
        return fixture.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == grainId && r.Name == "auto-close"));
    }

    [Fact]
    public async Task Ticket_numbers_start_at_10001_and_are_unique()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var tickets = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => scenario.ReceiveAsync(scenario.Message($"n-{i}", GrainScenario.NewPhone()))));
        Assert.All(tickets, t => Assert.True(t.TicketNumber >= 10001));
        Assert.Equal(30, tickets.Select(t => t.TicketNumber).Distinct().Count());
    }

    [Fact]
    public async Task Reopens_a_resolved_ticket_when_the_customer_writes_again_within_the_window()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var first = await scenario.ReceiveAsync(scenario.Message("r-1", phone));
        await Ticket(first.TicketNumber).ChangeAsync(new TicketChange { Status = TicketStatus.Resolved }, Agent);
        fixture.Time.Advance(TestClusterFixture.ReopenWindow - TimeSpan.FromMinutes(1));

        var second = await scenario.ReceiveAsync(scenario.Message("r-2", phone));

        Assert.Equal(first.TicketNumber, second.TicketNumber);
        Assert.Equal(TicketStatus.Open, (await Ticket(first.TicketNumber).GetAsync())!.Status);
        Assert.Contains("customer-replied:status:Open", await HistoryAsync(first.TicketNumber));
        Assert.Equal(0, await AutoCloseRemindersAsync(first.TicketNumber));
    }

    [Fact]
    public async Task A_message_after_the_window_closes_the_ticket_and_opens_a_follow_up_even_before_the_reminder_ticks()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var first = await scenario.ReceiveAsync(scenario.Message("w-1", phone));
        await Ticket(first.TicketNumber).ChangeAsync(new TicketChange { Status = TicketStatus.Resolved }, Agent);
        fixture.Time.Advance(TestClusterFixture.ReopenWindow + TimeSpan.FromMinutes(1));

        var second = await scenario.ReceiveAsync(scenario.Message("w-2", phone));

        Assert.NotEqual(first.TicketNumber, second.TicketNumber);
        var closed = (await Ticket(first.TicketNumber).GetAsync())!;
        Assert.Equal(TicketStatus.Closed, closed.Status);
        Assert.Equal(fixture.Time.GetUtcNow(), closed.ClosedAt);
        Assert.Contains("auto-closed:status:Closed", await HistoryAsync(first.TicketNumber));
        Assert.Equal(first.TicketNumber, (await Ticket(second.TicketNumber).GetAsync())!.FollowUpOf);
        Assert.Equal(0, await AutoCloseRemindersAsync(first.TicketNumber));
    }

    [Fact]
    public async Task A_message_on_a_closed_ticket_opens_a_follow_up_linked_to_it()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var first = await scenario.ReceiveAsync(scenario.Message("c-1", phone));
        await Ticket(first.TicketNumber).ChangeAsync(new TicketChange { Status = TicketStatus.Closed }, Agent);

        var second = await scenario.ReceiveAsync(scenario.Message("c-2", phone));

        Assert.NotEqual(first.TicketNumber, second.TicketNumber);
        var followUp = (await Ticket(second.TicketNumber).GetAsync())!;
        Assert.Equal(first.TicketNumber, followUp.FollowUpOf);
        Assert.Equal(first.CustomerId, followUp.CustomerId);
        Assert.Equal(first.ConversationId, second.ConversationId);
    }

    [Fact]
    public async Task A_resolved_ticket_is_closed_by_its_reminder_once_the_window_has_passed_and_not_before()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var first = await scenario.ReceiveAsync(scenario.Message("a-1", phone));
        var ticket = Ticket(first.TicketNumber);
        await ticket.ChangeAsync(new TicketChange { Status = TicketStatus.Resolved }, Agent);
        Assert.Equal(1, await AutoCloseRemindersAsync(first.TicketNumber));

        // A tick before the window has passed (early, or a stale repeat) changes nothing.
        fixture.Time.Advance(TestClusterFixture.ReopenWindow - TimeSpan.FromMinutes(1));
        await fixture.Probe(ticket).FireReminderAsync("auto-close");
        Assert.Equal(TicketStatus.Resolved, (await ticket.GetAsync())!.Status);
        Assert.Equal(1, await AutoCloseRemindersAsync(first.TicketNumber));

        fixture.Time.Advance(TimeSpan.FromMinutes(2));
        await fixture.Probe(ticket).FireReminderAsync("auto-close");

        var closed = (await ticket.GetAsync())!;
        Assert.Equal(TicketStatus.Closed, closed.Status);
        Assert.Equal(fixture.Time.GetUtcNow(), closed.ClosedAt);
        Assert.Contains("auto-closed:status:Closed", await HistoryAsync(first.TicketNumber));
        Assert.Equal(0, await AutoCloseRemindersAsync(first.TicketNumber));
        // A repeated tick after the close is harmless.
        await fixture.Probe(ticket).FireReminderAsync("auto-close");
        Assert.Single(await HistoryAsync(first.TicketNumber), h => h.StartsWith("auto-closed:", StringComparison.Ordinal));
        // After the window the next message opens a follow-up.
        var next = await scenario.ReceiveAsync(scenario.Message("a-2", phone));
        Assert.NotEqual(first.TicketNumber, next.TicketNumber);
        Assert.Equal(first.TicketNumber, (await Ticket(next.TicketNumber).GetAsync())!.FollowUpOf);
    }

    [Fact]
    public async Task Every_change_is_recorded_with_actor_and_old_and_new_value()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var first = await scenario.ReceiveAsync(scenario.Message("h-1", GrainScenario.NewPhone()));
        var ticket = Ticket(first.TicketNumber);
        await ticket.ChangeAsync(new TicketChange { Priority = TicketPriority.Urgent, Assignee = "ann", Team = "billing", Tags = ["VIP", "refund"] }, Agent);
        await ticket.ChangeAsync(new TicketChange { Assignee = "" }, Agent);

        var snapshot = (await ticket.GetAsync())!;
        Assert.Equal(TicketPriority.Urgent, snapshot.Priority);
        Assert.Null(snapshot.Assignee);
        Assert.Equal(["refund", "vip"], snapshot.Tags);
        var history = await HistoryAsync(first.TicketNumber);
        Assert.Contains("changed:priority:Urgent", history);
        Assert.Contains("changed:assignee:ann", history);
        Assert.Contains("changed:assignee:", history);
        Assert.Contains("changed:tags:refund,vip", history);
    }

    [Fact]
    public async Task Merging_moves_messages_and_conversations_and_closes_the_source_as_merged()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var a = await scenario.ReceiveAsync(scenario.Message("mg-1", phone, thread: "thread-a"));
        var b = await scenario.ReceiveAsync(scenario.Message("mg-2", phone, thread: "thread-b"));
        Assert.NotEqual(a.TicketNumber, b.TicketNumber);

        await Ticket(b.TicketNumber).MergeIntoAsync(a.TicketNumber, Agent);

        var source = (await Ticket(b.TicketNumber).GetAsync())!;
        Assert.Equal(TicketStatus.Closed, source.Status);
        Assert.Equal(a.TicketNumber, source.MergedInto);
        Assert.Contains(b.ConversationId, (await Ticket(a.TicketNumber).GetAsync())!.ConversationIds);
        Assert.Equal(2, await fixture.QueryAsync(db => db.Messages.CountAsync(m => m.TicketNumber == a.TicketNumber)));
        Assert.Contains("created::", await HistoryAsync(a.TicketNumber));
        Assert.Contains(await HistoryAsync(a.TicketNumber), h => h.StartsWith("merged-in:mergedFrom:", StringComparison.Ordinal));

        // The customer's next message on thread b follows the merge.
        var next = await scenario.ReceiveAsync(scenario.Message("mg-3", phone, thread: "thread-b"));
        Assert.Equal(a.TicketNumber, next.TicketNumber);
    }

    [Fact]
    public async Task Splitting_moves_one_message_into_a_new_ticket()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var first = await scenario.ReceiveAsync(scenario.Message("sp-1", phone, "my order is late"));
        var second = await scenario.ReceiveAsync(scenario.Message("sp-2", phone, "also: change my address"));

        var created = await Ticket(first.TicketNumber).SplitAsync(second.MessageId, Agent);

        Assert.NotEqual(first.TicketNumber, created.Number);
        Assert.Equal("also: change my address", created.Subject);
        Assert.Equal(created.Number, (await fixture.QueryAsync(db => db.Messages.SingleAsync(m => m.Id == second.MessageId))).TicketNumber);
        Assert.Equal(1, await fixture.QueryAsync(db => db.Messages.CountAsync(m => m.TicketNumber == first.TicketNumber)));
    }

    [Fact]
    public async Task A_ticket_cannot_be_merged_into_itself_or_into_a_missing_ticket()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var first = await scenario.ReceiveAsync(scenario.Message("bad-merge", GrainScenario.NewPhone()));
        Assert.Equal(DomainErrorKind.Invalid, (await Assert.ThrowsAsync<DomainException>(() => Ticket(first.TicketNumber).MergeIntoAsync(first.TicketNumber, Agent))).Kind);
        Assert.Equal(DomainErrorKind.NotFound, (await Assert.ThrowsAsync<DomainException>(() => Ticket(first.TicketNumber).MergeIntoAsync(9_999_999, Agent))).Kind);
    }

    [Fact]
    public async Task A_reply_is_queued_with_an_outbox_entry_and_a_retried_request_returns_the_first_reply()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var first = await scenario.ReceiveAsync(scenario.Message("rp-1", GrainScenario.NewPhone()));
        var reply = new AgentReply { Actor = Agent, Text = "On it", RequestId = "req-1" };

        var one = await Ticket(first.TicketNumber).ReplyAsync(reply);
        var two = await Ticket(first.TicketNumber).ReplyAsync(reply);

        Assert.Equal(one.Id, two.Id);
        Assert.Equal(MessageDirection.Outbound, one.Direction);
        var ticket = (await Ticket(first.TicketNumber).GetAsync())!;
        Assert.Equal(TicketStatus.Open, ticket.Status);
        Assert.NotNull(ticket.FirstResponseAt);
        Assert.Equal(1, await fixture.QueryAsync(db => db.Outbox.CountAsync(o => o.MessageId == one.Id)));
    }
}
