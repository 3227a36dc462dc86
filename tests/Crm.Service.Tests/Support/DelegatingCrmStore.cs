using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Tests.Support;

/// <summary>The real store behind a test's wrapper: every call passes through unless the wrapper overrides it.</summary>
internal abstract class DelegatingCrmStore(ICrmStore inner) : ICrmStore
{
    protected ICrmStore Inner { get; } = inner;

    public virtual Task CommitAsync(WriteSet writes, CancellationToken cancellationToken = default) => Inner.CommitAsync(writes, cancellationToken);
    public virtual Task<TicketRecord?> FindTicketAsync(long number, CancellationToken cancellationToken = default) => Inner.FindTicketAsync(number, cancellationToken);
    public virtual Task<ConversationRecord?> FindConversationAsync(string key, CancellationToken cancellationToken = default) => Inner.FindConversationAsync(key, cancellationToken);
    public virtual Task<ConversationRecord?> FindConversationAsync(Guid id, CancellationToken cancellationToken = default) => Inner.FindConversationAsync(id, cancellationToken);
    public virtual Task<CustomerRecord?> FindCustomerAsync(Guid id, CancellationToken cancellationToken = default) => Inner.FindCustomerAsync(id, cancellationToken);
    public virtual Task<IdentityRecord?> FindIdentityAsync(string key, CancellationToken cancellationToken = default) => Inner.FindIdentityAsync(key, cancellationToken);
    public virtual Task<IReadOnlyList<IdentityRecord>> FindIdentitiesOfCustomerAsync(Guid customerId, CancellationToken cancellationToken = default) => Inner.FindIdentitiesOfCustomerAsync(customerId, cancellationToken);
    public virtual Task<IReadOnlyList<long>> FindTicketNumbersOfCustomerAsync(Guid customerId, CancellationToken cancellationToken = default) => Inner.FindTicketNumbersOfCustomerAsync(customerId, cancellationToken);
    public virtual Task<MessageRecord?> FindMessageAsync(Guid id, CancellationToken cancellationToken = default) => Inner.FindMessageAsync(id, cancellationToken);
    public virtual Task<MessageRecord?> FindMessageByExternalIdAsync(string channelAccountId, string externalId, CancellationToken cancellationToken = default) => Inner.FindMessageByExternalIdAsync(channelAccountId, externalId, cancellationToken);
    public virtual Task<MessageRecord?> FindMessageByIdempotencyKeyAsync(string key, CancellationToken cancellationToken = default) => Inner.FindMessageByIdempotencyKeyAsync(key, cancellationToken);
    public virtual Task<IReadOnlyList<AttachmentRecord>> FindAttachmentsAsync(Guid messageId, CancellationToken cancellationToken = default) => Inner.FindAttachmentsAsync(messageId, cancellationToken);
    public virtual Task<ChannelAccountRecord?> FindChannelAccountAsync(string id, CancellationToken cancellationToken = default) => Inner.FindChannelAccountAsync(id, cancellationToken);
}
