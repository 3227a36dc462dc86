using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Grains;

/// <summary>The store-side checks that keep a message off a merged ticket and a merge off a withdrawn one, including
/// when both writes land in one group commit.</summary>
[Collection(ClusterCollection.Name)]
public sealed class StorePreconditionTests(TestClusterFixture fixture)
{
    private ICrmStore Store => fixture.SiloServices.GetRequiredService<ICrmStore>();

    private static long NewNumber() => Random.Shared.NextInt64(800_000_000, 899_999_999);

    private static TicketRecord Ticket(long number) => new() { Number = number, Subject = "pre", CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow };

    private static MessageRecord Message(long ticket) => new()
    {
        Id = Guid.CreateVersion7(),
        TicketNumber = ticket,
        Direction = MessageDirection.Inbound,
        ChannelAccountId = "pre",
        ExternalId = Guid.NewGuid().ToString("N"),
        Author = "test",
        Text = "pre",
        CreatedAt = DateTimeOffset.UtcNow,
    };

    /// <summary>What a ticket merge writes: the content move, then the source row (without the activity column) as merged.</summary>
    private static WriteSet Merge(long from, long to)
    {
        var merged = Ticket(from);
        merged.Status = TicketStatus.Closed;
        merged.MergedInto = to;
        return new WriteSet().Add(new MoveTicketContent(from, to))
            .Update(merged, typeof(TicketRecord).GetProperties().Select(p => p.Name).Where(n => n is not (nameof(TicketRecord.Number) or nameof(TicketRecord.LastCustomerMessageAt))).ToArray());
    }

    private async Task<(long A, long B)> TwoTicketsAsync()
    {
        var (a, b) = (NewNumber(), NewNumber());
        await Store.CommitAsync(new WriteSet().Insert(Ticket(a)).Insert(Ticket(b)));
        return (a, b);
    }

    [Fact]
    public async Task A_message_written_after_a_merge_in_the_same_transaction_is_refused()
    {
        var (a, b) = await TwoTicketsAsync();
        var merge = Merge(a, b);
        var message = new WriteSet().Add(new RequireTicketNotMerged(a)).Insert(Message(a));
        await using var db = await fixture.SiloServices.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();
        await using var transaction = await db.Database.BeginTransactionAsync();
        var tickets = await TicketMerges.ReadAsync(db, [merge, message]);
        var changes = new List<ChangeRecord>();

        await WriteSetApplier.ApplyAsync(db, merge, tickets, DateTimeOffset.UtcNow, changes);

        await Assert.ThrowsAsync<StaleWriteException>(() => WriteSetApplier.ApplyAsync(db, message, tickets, DateTimeOffset.UtcNow, changes));
    }

    [Fact]
    public async Task A_message_committed_together_with_a_merge_of_its_ticket_never_lands_on_the_merged_ticket()
    {
        var (a, b) = await TwoTicketsAsync();
        var message = Message(a);

        // Queued back to back: the writer commits them in one batch (or two); either way the message must be refused.
        var merging = Store.CommitAsync(Merge(a, b));
        var writing = Store.CommitAsync(new WriteSet().Add(new RequireTicketNotMerged(a)).Insert(message));
        await merging;

        await Assert.ThrowsAsync<StaleWriteException>(() => writing);
        var id = message.Id;
        Assert.False(await fixture.QueryAsync(db => db.Messages.AnyAsync(m => m.Id == id)));
    }

    [Fact]
    public async Task A_merge_into_a_ticket_withdrawn_meanwhile_is_refused_and_a_ticket_with_merged_in_conversations_is_not_withdrawn()
    {
        var (y, t) = await TwoTicketsAsync();
        var conversation = new ConversationRecord
        {
            Id = Guid.CreateVersion7(), Key = "pre:" + Guid.NewGuid().ToString("N"), ChannelAccountId = "pre", ThreadKey = "t",
            CustomerIdentity = "phone:+1", TicketNumber = t, CreatedAt = DateTimeOffset.UtcNow,
        };
        await Store.CommitAsync(new WriteSet().Insert(conversation));

        await Store.CommitAsync(new WriteSet().Add(new WithdrawEmptyTicket(t, conversation.Id, RestorePointerTo: null)));

        await Assert.ThrowsAsync<StaleWriteException>(() => Store.CommitAsync(Merge(y, t)));
        Assert.Null(await Store.FindTicketAsync(t));
        Assert.Null((await Store.FindTicketAsync(y))!.MergedInto);

        // The other order: a ticket that received another ticket's conversation is kept.
        var (y2, t2) = await TwoTicketsAsync();
        var moved = new ConversationRecord
        {
            Id = Guid.CreateVersion7(), Key = "pre:" + Guid.NewGuid().ToString("N"), ChannelAccountId = "pre", ThreadKey = "y",
            CustomerIdentity = "phone:+1", TicketNumber = y2, CreatedAt = DateTimeOffset.UtcNow,
        };
        await Store.CommitAsync(new WriteSet().Insert(moved));
        await Store.CommitAsync(Merge(y2, t2));
        await Assert.ThrowsAsync<StaleWriteException>(() => Store.CommitAsync(new WriteSet().Add(new WithdrawEmptyTicket(t2, Guid.CreateVersion7(), RestorePointerTo: null))));
        Assert.NotNull(await Store.FindTicketAsync(t2));
    }
}
