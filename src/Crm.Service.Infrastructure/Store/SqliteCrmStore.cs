using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Store;

/// <summary>The grains' view of the store: reads with untracked queries, writes through the group-commit writer.</summary>
internal sealed class SqliteCrmStore(IDbContextFactory<CrmDbContext> contexts, GroupCommitWriter writer, StoreInitializer initializer) : ICrmStore
{
    // The lookups every new conversation makes, compiled once instead of translated from LINQ on every call.
    private static readonly Func<CrmDbContext, long, Task<TicketRecord?>> TicketByNumber =
        EF.CompileAsyncQuery((CrmDbContext db, long number) => db.Tickets.AsNoTracking().FirstOrDefault(t => t.Number == number));
    private static readonly Func<CrmDbContext, string, Task<ConversationRecord?>> ConversationByKey =
        EF.CompileAsyncQuery((CrmDbContext db, string key) => db.Conversations.AsNoTracking().FirstOrDefault(c => c.Key == key));
    private static readonly Func<CrmDbContext, string, Task<IdentityRecord?>> IdentityByKey =
        EF.CompileAsyncQuery((CrmDbContext db, string key) => db.Identities.AsNoTracking().FirstOrDefault(i => i.Key == key));
    private static readonly Func<CrmDbContext, string, string, Task<MessageRecord?>> MessageByExternalId =
        EF.CompileAsyncQuery((CrmDbContext db, string channel, string externalId) =>
            db.Messages.AsNoTracking().FirstOrDefault(m => m.ChannelAccountId == channel && m.ExternalId == externalId && m.Direction == MessageDirection.Inbound));

    public Task CommitAsync(WriteSet writes, CancellationToken cancellationToken = default) => writer.CommitAsync(writes, cancellationToken);

    public Task<TicketRecord?> FindTicketAsync(long number, CancellationToken cancellationToken = default) =>
        QueryAsync(db => TicketByNumber(db, number), cancellationToken);

    public Task<ConversationRecord?> FindConversationAsync(string key, CancellationToken cancellationToken = default) =>
        QueryAsync(db => ConversationByKey(db, key), cancellationToken);

    public Task<ConversationRecord?> FindConversationAsync(Guid id, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Conversations.FirstOrDefaultAsync(c => c.Id == id, cancellationToken), cancellationToken);

    public Task<CustomerRecord?> FindCustomerAsync(Guid id, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Customers.FirstOrDefaultAsync(c => c.Id == id, cancellationToken), cancellationToken);

    public Task<IdentityRecord?> FindIdentityAsync(string key, CancellationToken cancellationToken = default) =>
        QueryAsync(db => IdentityByKey(db, key), cancellationToken);

    public Task<IReadOnlyList<IdentityRecord>> FindIdentitiesOfCustomerAsync(Guid customerId, CancellationToken cancellationToken = default) =>
        QueryAsync<IReadOnlyList<IdentityRecord>>(async db => await db.Identities.Where(i => i.CustomerId == customerId).OrderBy(i => i.LinkedAt).ToListAsync(cancellationToken), cancellationToken);

    public Task<IReadOnlyList<long>> FindTicketNumbersOfCustomerAsync(Guid customerId, CancellationToken cancellationToken = default) =>
        QueryAsync<IReadOnlyList<long>>(async db => await db.Tickets.Where(t => t.CustomerId == customerId).Select(t => t.Number).ToListAsync(cancellationToken), cancellationToken);

    public Task<MessageRecord?> FindMessageAsync(Guid id, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Messages.FirstOrDefaultAsync(m => m.Id == id, cancellationToken), cancellationToken);

    public Task<MessageRecord?> FindMessageByExternalIdAsync(string channelAccountId, string externalId, CancellationToken cancellationToken = default) =>
        QueryAsync(db => MessageByExternalId(db, channelAccountId, externalId), cancellationToken);

    // Replies and notes share the unique key column (their keys never overlap: notes have their own prefixes).
    public Task<MessageRecord?> FindMessageByIdempotencyKeyAsync(string key, CancellationToken cancellationToken = default) =>
        QueryAsync(db => db.Messages.AsNoTracking().FirstOrDefaultAsync(m => m.IdempotencyKey == key, cancellationToken), cancellationToken);

    public Task<IReadOnlyList<AttachmentRecord>> FindAttachmentsAsync(Guid messageId, CancellationToken cancellationToken = default) =>
        QueryAsync<IReadOnlyList<AttachmentRecord>>(async db => await db.Attachments.Where(a => a.MessageId == messageId).OrderBy(a => a.Id).ToListAsync(cancellationToken), cancellationToken);

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
