using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Grains;

/// <summary>A merge that commits between a ticket accepting a customer's message and that message's commit.</summary>
public sealed class InFlightMergeTests(FaultyStoreClusterFixture fixture) : IClassFixture<FaultyStoreClusterFixture>
{
    [Fact]
    public async Task A_message_accepted_just_before_its_ticket_is_merged_lands_on_the_merge_target_and_reopens_it()
    {
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var source = await scenario.ReceiveAsync(scenario.Message("ifm-1", phone, "first question", thread: "ta"));
        var target = await scenario.ReceiveAsync(scenario.Message("ifm-2", phone, "second question", thread: "tb"));
        await fixture.Grains.GetGrain<ITicketGrain>(target.TicketNumber).ChangeAsync(new TicketChange { Status = TicketStatus.Resolved }, "agent:a");

        // The source ticket accepts "ifm-3"; before the conversation's commit reaches the disk, an agent merges it.
        var merged = 0;
        fixture.Store.BeforeCommit = async writes =>
        {
            if (writes.Operations.Any(o => o is InsertRow { Record: MessageRecord { ExternalId: "ifm-3" } }) && Interlocked.Exchange(ref merged, 1) == 0)
                await fixture.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Tickets).MergeTicketsAsync(source.TicketNumber, target.TicketNumber, "agent:b");
        };
        IngestResult late;
        try
        {
            late = await scenario.ReceiveAsync(scenario.Message("ifm-3", phone, "one more thing", thread: "ta"));
        }
        finally
        {
            fixture.Store.BeforeCommit = null;
        }

        Assert.Equal(1, merged);
        Assert.Equal(target.TicketNumber, late.TicketNumber);
        var sourceNumber = source.TicketNumber;
        Assert.Empty(await fixture.QueryAsync(db => db.Messages.Where(m => m.TicketNumber == sourceNumber).Select(m => m.ExternalId).ToListAsync()));
        Assert.Equal(target.TicketNumber, await fixture.QueryAsync(db => db.Messages.Where(m => m.ExternalId == "ifm-3" && m.ChannelAccountId == scenario.Channel).Select(m => m.TicketNumber).SingleAsync()));
        // The target's rules ran for the message: the customer wrote again, so the resolved ticket needs an agent.
        var after = await fixture.Grains.GetGrain<ITicketGrain>(target.TicketNumber).GetAsync();
        Assert.Equal(TicketStatus.Open, after!.Status);
        var conversationKey = GrainKeys.Conversation(scenario.Channel, "ta");
        Assert.Equal(target.TicketNumber, await fixture.QueryAsync(db => db.Conversations.Where(c => c.Key == conversationKey).Select(c => c.TicketNumber).SingleAsync()));
    }
}
