using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Grains;

/// <summary>A commit that fails leaves the grain exactly as the database is: nothing unaudited is written later.</summary>
public sealed class FailedCommitTests(FaultyStoreClusterFixture fixture) : IClassFixture<FaultyStoreClusterFixture>
{
    private static bool Touches<T>(WriteSet writes) => writes.Operations.Any(o => o is UpdateRow { Record: T } or InsertRow { Record: T });

    [Fact]
    public async Task A_ticket_change_whose_commit_failed_is_not_kept_and_not_written_by_the_next_change()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var ticket = fixture.Grains.GetGrain<ITicketGrain>((await scenario.ReceiveAsync(scenario.Message("fc-1", GrainScenario.NewPhone()))).TicketNumber);

        fixture.Store.FailNextCommitWhere(Touches<TicketRecord>);
        await Assert.ThrowsAsync<IOException>(() => ticket.ChangeAsync(new TicketChange { Tags = ["vip"], Assignee = "mallory" }, "agent:a"));

        var afterFailure = await ticket.GetAsync();
        Assert.Empty(afterFailure!.Tags);
        Assert.Null(afterFailure.Assignee);

        await ticket.ChangeAsync(new TicketChange { Priority = TicketPriority.High }, "agent:a");
        var number = afterFailure.Number;
        var stored = await fixture.QueryAsync(db => db.Tickets.SingleAsync(t => t.Number == number));
        Assert.Empty(stored.Tags);
        Assert.Null(stored.Assignee);
        Assert.Equal(TicketPriority.High, stored.Priority);
    }

    [Fact]
    public async Task A_status_change_whose_commit_failed_leaves_the_ticket_open()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var ticket = fixture.Grains.GetGrain<ITicketGrain>((await scenario.ReceiveAsync(scenario.Message("fc-2", GrainScenario.NewPhone()))).TicketNumber);

        fixture.Store.FailNextCommitWhere(Touches<TicketRecord>);
        await Assert.ThrowsAsync<IOException>(() => ticket.ChangeAsync(new TicketChange { Status = TicketStatus.Resolved }, "agent:a"));

        Assert.Equal(TicketStatus.New, (await ticket.GetAsync())!.Status);
    }

    [Fact]
    public async Task A_customer_change_whose_commit_failed_is_not_kept()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var customer = fixture.Grains.GetGrain<ICustomerGrain>((await scenario.ReceiveAsync(scenario.Message("fc-3", GrainScenario.NewPhone()))).CustomerId);

        fixture.Store.FailNextCommitWhere(Touches<CustomerRecord>);
        await Assert.ThrowsAsync<IOException>(() => customer.UpdateProfileAsync(new CustomerProfileChange { Organization = "Evil Corp", Tags = ["x"] }, "agent:a"));

        var snapshot = await customer.GetAsync();
        Assert.Null(snapshot!.Organization);
        Assert.Empty(snapshot.Tags);
        await customer.UpdateProfileAsync(new CustomerProfileChange { Language = "en" }, "agent:a");
        var id = snapshot.Id;
        var stored = await fixture.QueryAsync(db => db.Customers.SingleAsync(c => c.Id == id));
        Assert.Null(stored.Organization);
        Assert.Empty(stored.Tags);
    }

    [Fact]
    public async Task An_identity_move_whose_commit_failed_keeps_the_identity_with_its_customer()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var first = await scenario.ReceiveAsync(scenario.Message("fc-4", phone));
        var identity = fixture.Grains.GetGrain<IIdentityGrain>(GrainKeys.Identity(IdentityKind.Phone, phone, scenario.Channel));

        fixture.Store.FailNextCommitWhere(Touches<IdentityRecord>);
        await Assert.ThrowsAsync<IOException>(() => identity.LinkToCustomerAsync(Guid.NewGuid(), "agent:a"));

        Assert.Equal(first.CustomerId, await identity.GetCustomerAsync());
    }

    [Fact]
    public async Task A_message_whose_commit_failed_is_stored_by_the_redelivery_on_the_same_ticket()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var first = await scenario.ReceiveAsync(scenario.Message("fc-5", phone));

        fixture.Store.FailNextCommitWhere(Touches<MessageRecord>);
        await Assert.ThrowsAsync<IOException>(() => scenario.ReceiveAsync(scenario.Message("fc-6", phone)));
        var redelivered = await scenario.ReceiveAsync(scenario.Message("fc-6", phone));

        Assert.False(redelivered.Duplicate);
        Assert.Equal(first.TicketNumber, redelivered.TicketNumber);
        Assert.Equal(1, await fixture.QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == scenario.Channel && m.ExternalId == "fc-6")));
    }

    [Fact]
    public async Task The_auto_close_reminder_is_stored_before_the_ticket_is_committed_as_resolved()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var ticket = fixture.Grains.GetGrain<ITicketGrain>((await scenario.ReceiveAsync(scenario.Message("fc-7", GrainScenario.NewPhone()))).TicketNumber);
        // Only this grain's reminders: the cluster is shared with other test classes' grains.
        var grainId = ticket.GetGrainId().ToString();
        var remindersBefore = await fixture.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == grainId));
        int? remindersAtCommit = null;
        fixture.Store.BeforeCommit = async writes =>
        {
            if (writes.Operations.Any(o => o is UpdateRow { Record: TicketRecord { Status: TicketStatus.Resolved } }))
                remindersAtCommit = await fixture.QueryAsync(db => db.Reminders.CountAsync(r => r.GrainId == grainId));
        };
        try
        {
            await ticket.ChangeAsync(new TicketChange { Status = TicketStatus.Resolved }, "agent:a");
        }
        finally
        {
            fixture.Store.BeforeCommit = null;
        }

        // A kill right after the commit finds the reminder already stored, so the ticket still closes.
        Assert.Equal(remindersBefore + 1, remindersAtCommit);
    }

    [Fact]
    public async Task A_message_whose_commit_failed_leaves_no_customer_activity_on_the_ticket()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var number = (await scenario.ReceiveAsync(scenario.Message("fc-8", phone))).TicketNumber;
        var before = await fixture.QueryAsync(db => db.Tickets.Where(t => t.Number == number).Select(t => t.LastCustomerMessageAt).SingleAsync());

        fixture.Store.FailNextCommitWhere(Touches<MessageRecord>);
        await Assert.ThrowsAsync<IOException>(() => scenario.ReceiveAsync(scenario.Message("fc-9", phone)));
        await fixture.Grains.GetGrain<ITicketGrain>(number).ChangeAsync(new TicketChange { Priority = TicketPriority.High }, "agent:a");

        Assert.Equal(before, await fixture.QueryAsync(db => db.Tickets.Where(t => t.Number == number).Select(t => t.LastCustomerMessageAt).SingleAsync()));
    }

    [Fact]
    public async Task A_full_row_change_never_takes_back_the_activity_time_written_with_a_message()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var number = (await scenario.ReceiveAsync(scenario.Message("fc-10", phone))).TicketNumber;
        var ticket = fixture.Grains.GetGrain<ITicketGrain>(number);
        await ticket.ChangeAsync(new TicketChange { Status = TicketStatus.Open }, "agent:a");
        await scenario.ReceiveAsync(scenario.Message("fc-11", phone));
        var afterSecond = await fixture.QueryAsync(db => db.Tickets.Where(t => t.Number == number).Select(t => t.LastCustomerMessageAt).SingleAsync());

        await ticket.ChangeAsync(new TicketChange { Priority = TicketPriority.Low }, "agent:a");

        Assert.Equal(afterSecond, await fixture.QueryAsync(db => db.Tickets.Where(t => t.Number == number).Select(t => t.LastCustomerMessageAt).SingleAsync()));
    }
}
