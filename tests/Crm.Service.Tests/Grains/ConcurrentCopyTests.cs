using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Grains;

/// <summary>Two copies of one message on two thread keys at the same instant: one is stored, and the other leaves nothing behind.</summary>
public sealed class ConcurrentCopyTests(FaultyStoreClusterFixture fixture) : IClassFixture<FaultyStoreClusterFixture>
{
    [Fact]
    public async Task The_copy_that_loses_the_race_takes_back_the_ticket_and_conversation_it_opened()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        // The copy on thread "tb" has opened its ticket and is about to commit the message when the copy on "ta"
        // (which checked the store before "tb" committed anything) is stored first.
        IngestResult? winner = null;
        var raced = 0;
        fixture.Store.BeforeCommit = async writes =>
        {
            if (writes.Operations.Any(o => o is InsertRow { Record: MessageRecord { ExternalId: "cc-1" } }) && Interlocked.Exchange(ref raced, 1) == 0)
                winner = await scenario.ReceiveAsync(scenario.Message("cc-1", phone, "same words", thread: "ta"));
        };
        IngestResult loser;
        try
        {
            loser = await scenario.ReceiveAsync(scenario.Message("cc-1", phone, "same words", thread: "tb"));
        }
        finally
        {
            fixture.Store.BeforeCommit = null;
        }

        Assert.NotNull(winner);
        Assert.False(winner.Duplicate);
        Assert.True(loser.Duplicate);
        Assert.Equal(winner.MessageId, loser.MessageId);
        Assert.Equal(winner.TicketNumber, loser.TicketNumber);
        var customer = winner.CustomerId;
        Assert.Equal([winner.TicketNumber], await fixture.QueryAsync(db => db.Tickets.Where(t => t.CustomerId == customer).Select(t => t.Number).ToListAsync()));
        var loserKey = GrainKeys.Conversation(scenario.Channel, "tb");
        Assert.False(await fixture.QueryAsync(db => db.Conversations.AnyAsync(c => c.Key == loserKey)));

        // The thread still works: its next message starts a conversation and a ticket of its own.
        var next = await scenario.ReceiveAsync(scenario.Message("cc-2", phone, "and another", thread: "tb"));
        Assert.False(next.Duplicate);
        Assert.NotEqual(winner.TicketNumber, next.TicketNumber);
        var ticket = await fixture.Grains.GetGrain<ITicketGrain>(next.TicketNumber).GetAsync();
        Assert.Equal([next.ConversationId], ticket!.ConversationIds);
    }

    [Fact]
    public async Task A_ticket_that_holds_a_message_is_never_withdrawn()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var first = await scenario.ReceiveAsync(scenario.Message("cc-3", GrainScenario.NewPhone()));

        Assert.False(await fixture.Grains.GetGrain<ITicketGrain>(first.TicketNumber).WithdrawIfEmptyAsync(first.ConversationId, restorePointerTo: null));

        Assert.NotNull(await fixture.Grains.GetGrain<ITicketGrain>(first.TicketNumber).GetAsync());
        var number = first.TicketNumber;
        Assert.Equal(1, await fixture.QueryAsync(db => db.Messages.CountAsync(m => m.TicketNumber == number)));
    }

    [Fact]
    public async Task A_losing_copy_on_a_conversation_whose_ticket_was_closed_points_the_conversation_back_at_that_ticket()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var first = await scenario.ReceiveAsync(scenario.Message("cc-10", phone, thread: "ta"));
        await fixture.Grains.GetGrain<ITicketGrain>(first.TicketNumber).ChangeAsync(new TicketChange { Status = TicketStatus.Closed }, "agent:a");
        var raced = 0;
        fixture.Store.BeforeCommit = async writes =>
        {
            if (writes.Operations.Any(o => o is InsertRow { Record: MessageRecord { ExternalId: "cc-11" } }) && Interlocked.Exchange(ref raced, 1) == 0)
                await scenario.ReceiveAsync(scenario.Message("cc-11", phone, thread: "tb"));
        };
        IngestResult loser;
        try
        {
            // "ta" opens a follow-up of the closed ticket for "cc-11"; the copy on "tb" is stored first.
            loser = await scenario.ReceiveAsync(scenario.Message("cc-11", phone, thread: "ta"));
        }
        finally
        {
            fixture.Store.BeforeCommit = null;
        }

        Assert.True(loser.Duplicate);
        var key = GrainKeys.Conversation(scenario.Channel, "ta");
        var pointer = await fixture.QueryAsync(db => db.Conversations.Where(c => c.Key == key).Select(c => c.TicketNumber).SingleAsync());
        Assert.Equal(first.TicketNumber, pointer);
        var customer = first.CustomerId;
        var tickets = await fixture.QueryAsync(db => db.Tickets.Where(t => t.CustomerId == customer).Select(t => t.Number).OrderBy(n => n).ToListAsync());
        Assert.Equal([first.TicketNumber, loser.TicketNumber], tickets);
        // The conversation still follows up its closed ticket on its next message.
        var next = await scenario.ReceiveAsync(scenario.Message("cc-12", phone, thread: "ta"));
        var followUp = await fixture.Grains.GetGrain<ITicketGrain>(next.TicketNumber).GetAsync();
        Assert.Equal(first.TicketNumber, followUp!.FollowUpOf);
    }
}
