using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Store;

/// <summary>The grains' view of the store: reads with untracked queries, writes through the group-commit writer.</summary>
internal sealed class SqliteCrmStore(IDbContextFactory<CrmDbContext> contexts, GroupCommitWriter writer, StoreInitializer initializer) : ICrmStore
{
    public Task CommitAsync(WriteSet writes, CancellationToken cancellationToken = default) => writer.CommitAsync(writes, cancellationToken);

    public Task<TicketRecord?> FindTicketAsync(long number, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Tickets.FirstOrDefaultAsync(t => t.Number == number, cancellationToken), cancellationToken);

    public Task<ConversationRecord?> FindConversationAsync(string key, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Conversations.FirstOrDefaultAsync(c => c.Key == key, cancellationToken), cancellationToken);

    public Task<ConversationRecord?> FindConversationAsync(Guid id, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Conversations.FirstOrDefaultAsync(c => c.Id == id, cancellationToken), cancellationToken);

    public Task<CustomerRecord?> FindCustomerAsync(Guid id, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Customers.FirstOrDefaultAsync(c => c.Id == id, cancellationToken), cancellationToken);

    public Task<IdentityRecord?> FindIdentityAsync(string key, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Identities.FirstOrDefaultAsync(i => i.Key == key, cancellationToken), cancellationToken);

    public Task<IReadOnlyList<IdentityRecord>> FindIdentitiesOfCustomerAsync(Guid customerId, CancellationToken cancellationToken = default) =>
        QueryAsync<IReadOnlyList<IdentityRecord>>(async db => await db.Identities.Where(i => i.CustomerId == customerId).OrderBy(i => i.LinkedAt).ToListAsync(cancellationToken), cancellationToken);

    public Task<IReadOnlyList<long>> FindTicketNumbersOfCustomerAsync(Guid customerId, CancellationToken cancellationToken = default) =>
        QueryAsync<IReadOnlyList<long>>(async db => await db.Tickets.Where(t => t.CustomerId == customerId).Select(t => t.Number).ToListAsync(cancellationToken), cancellationToken);

    public Task<MessageRecord?> FindMessageAsync(Guid id, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Messages.FirstOrDefaultAsync(m => m.Id == id, cancellationToken), cancellationToken);

    public Task<MessageRecord?> FindMessageByExternalIdAsync(string channelAccountId, string externalId, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Messages.FirstOrDefaultAsync(m => m.ChannelAccountId == channelAccountId && m.ExternalId == externalId, cancellationToken), cancellationToken);

    public Task<MessageRecord?> FindMessageByIdempotencyKeyAsync(string key, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Messages.FirstOrDefaultAsync(m => m.IdempotencyKey == key, cancellationToken), cancellationToken);

    public Task<IReadOnlyList<AttachmentRecord>> FindAttachmentsAsync(Guid messageId, CancellationToken cancellationToken = default) =>
        QueryAsync<IReadOnlyList<AttachmentRecord>>(async db => await db.Attachments.Where(a => a.MessageId == messageId).ToListAsync(cancellationToken), cancellationToken);

    public Task<ChannelAccountRecord?> FindChannelAccountAsync(string id, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.ChannelAccounts.FirstOrDefaultAsync(c => c.Id == id, cancellationToken), cancellationToken);

    private async Task<T> QueryAsync<T>(Func<CrmDbContext, Task<T>> query, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        db.ChangeTracker.QueryTrackingBehavior = QueryTrackingBehavior.NoTracking;
        return await query(db);
    }
}
