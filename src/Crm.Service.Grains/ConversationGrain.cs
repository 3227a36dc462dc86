using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Microsoft.Extensions.Options;

namespace Crm.Service.Grains;

/// <summary>
/// One thread on one channel account. Stores inbound messages durably, deduplicated on the channel's message id,
/// and routes each to the conversation's ticket (opening or following up tickets as the ticket decides).
/// </summary>
/// <remarks>
/// The order of commits is chosen so that a crash at any point loses nothing acknowledged and a redelivery
/// repairs whatever was half done: the ticket pointer is stored before the ticket is opened, the ticket before
/// the message, and the message before the caller is answered.
/// Calls go conversation → ticket only (tickets never call conversations), so the two cannot deadlock.
/// </remarks>
public sealed class ConversationGrain(
    ICrmStore store,
    IBlobStore blobs,
    IHtmlSanitizer sanitizer,
    ITicketNumberAllocator ticketNumbers,
    IOptions<IngestOptions> ingestOptions,
    TimeProvider time) : Grain, IConversationGrain
{
    private const int RecentCapacity = 1024;
    private const int MaxMergeHops = 16;

    private ConversationRecord? _record;
    private bool _recordStored;
    // Set when a merge moved this conversation to another ticket; the pointer is stored with the next message.
    private bool _ticketMoved;
    // Set when the current ticket is closed and the next one is its follow-up.
    private long? _followUpOf;
    // Set while the first message of a new conversation is being received.
    private bool _startedNow;
    // Fast path for redelivery while active; the unique index on (channel account, external id) is the guarantee.
    private readonly Dictionary<string, IngestResult> _recent = new(StringComparer.Ordinal);
    private readonly Queue<string> _recentOrder = new();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _record = await store.FindConversationAsync(this.GetPrimaryKeyString(), cancellationToken);
        _recordStored = _record is not null;
    }

    public Task<ConversationSnapshot?> GetAsync() => Task.FromResult(_recordStored ? _record?.ToSnapshot() : null);

    public async Task<IngestResult> ReceiveAsync(InboundMessage message, CancellationToken cancellationToken = default)
    {
        var (accountId, threadKey) = GrainKeys.ParseConversation(this.GetPrimaryKeyString());
        if (message.ChannelAccountId != accountId || message.ThreadKey != threadKey)
            throw new ArgumentException($"Message for {message.ChannelAccountId}:{message.ThreadKey} sent to conversation {this.GetPrimaryKeyString()}.", nameof(message));
        if (_recent.TryGetValue(message.ExternalMessageId, out var known))
            return known with { Duplicate = true };

        var limits = ingestOptions.Value;
        if (message.Attachments.Count > limits.MaxAttachments)
            throw new DomainException(DomainErrorKind.TooLarge, $"At most {limits.MaxAttachments} attachments per message.", "attachments");
        if (message.Attachments.FirstOrDefault(a => a.Content.LongLength > limits.MaxAttachmentBytes) is { } tooBig)
            throw new DomainException(DomainErrorKind.TooLarge, $"Attachment '{AttachmentRules.SanitizeFileName(tooBig.FileName)}' is {tooBig.Content.LongLength} bytes; the limit is {limits.MaxAttachmentBytes}.", "attachments");

        var now = time.GetUtcNow();
        var messageId = Guid.CreateVersion7(now);
        var conversation = _record ?? await StartAsync(message, now, cancellationToken);
        var routing = _recordStored && conversation.TicketNumber != 0 ? await OfferToTicketAsync(conversation, messageId, now, cancellationToken) : null;
        if (routing is not { Kind: InboundRoutingKind.Accepted })
        {
            // A new ticket is rare; check first that this is not a redelivery whose first copy went to an older ticket.
            if (await store.FindMessageByExternalIdAsync(accountId, message.ExternalMessageId, cancellationToken) is { } stored)
                return Remember(message.ExternalMessageId, ResultFor(stored, conversation, duplicate: true));
            await OpenTicketAsync(conversation, message, now, cancellationToken);
        }

        var record = new MessageRecord
        {
            Id = messageId,
            ConversationId = conversation.Id,
            TicketNumber = conversation.TicketNumber,
            Direction = MessageDirection.Inbound,
            ChannelAccountId = accountId,
            ExternalId = message.ExternalMessageId,
            Author = conversation.CustomerIdentity,
            Subject = message.Subject,
            Text = message.Text ?? (message.Html is null ? null : sanitizer.ToPlainText(message.Html)),
            Html = message.Html is null ? null : sanitizer.Sanitize(message.Html),
            CreatedAt = now,
            SentAt = message.SentAt,
            Delivery = DeliveryStatus.None,
            AttachmentCount = message.Attachments.Count,
        };
        var writes = new WriteSet().Insert(record);
        foreach (var attachment in message.Attachments)
            writes.Insert(await StoreAttachmentAsync(messageId, attachment, now, cancellationToken));
        writes.Insert(await StoreRawSourceAsync(messageId, message, cancellationToken));
        if (routing?.ActivityAt is { } activityAt)
            writes.Update(new TicketRecord { Number = conversation.TicketNumber, Subject = "", UpdatedAt = activityAt, LastCustomerMessageAt = activityAt },
                nameof(TicketRecord.UpdatedAt), nameof(TicketRecord.LastCustomerMessageAt));
        if (_ticketMoved)
            writes.Update(conversation.Copy(), nameof(ConversationRecord.TicketNumber));
        try
        {
            await store.CommitAsync(writes, cancellationToken);
            _ticketMoved = false;
        }
        catch (DuplicateKeyException)
        {
            var stored = await store.FindMessageByExternalIdAsync(accountId, message.ExternalMessageId, cancellationToken)
                ?? throw new InvalidOperationException($"Message {message.ExternalMessageId} was refused as a duplicate but is not stored.");
            return Remember(message.ExternalMessageId, ResultFor(stored, conversation, duplicate: true));
        }
        return Remember(message.ExternalMessageId, ResultFor(record, conversation, duplicate: false));
    }

    /// <summary>A new conversation: resolve the sender to a customer (creating one on first contact).</summary>
    private async Task<ConversationRecord> StartAsync(InboundMessage message, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var account = await GrainFactory.GetGrain<IChannelAccountGrain>(message.ChannelAccountId).GetAsync()
            ?? throw new DomainException(DomainErrorKind.NotFound, $"No channel '{message.ChannelAccountId}'.", "channelId");
        var identityKey = GrainKeys.Identity(message.Sender.Kind, message.Sender.Value, message.ChannelAccountId);
        var customerId = await GrainFactory.GetGrain<IIdentityGrain>(identityKey).ResolveCustomerAsync(message.Sender.DisplayName, cancellationToken);
        _startedNow = true;
        _record = new ConversationRecord
        {
            Id = Guid.CreateVersion7(now),
            Key = this.GetPrimaryKeyString(),
            ChannelAccountId = message.ChannelAccountId,
            Channel = account.Kind,
            ThreadKey = message.ThreadKey,
            CustomerId = customerId,
            CustomerIdentity = identityKey,
            CreatedAt = now,
        };
        return _record;
    }

    /// <summary>Offers the message to the current ticket, following merges; anything but Accepted means a ticket must be opened.</summary>
    private async Task<InboundRouting> OfferToTicketAsync(ConversationRecord conversation, Guid messageId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        for (var hop = 0; hop < MaxMergeHops; hop++)
        {
            var routing = await GrainFactory.GetGrain<ITicketGrain>(conversation.TicketNumber)
                .OnInboundMessageAsync(new InboundNotice(messageId, conversation.Id, now), cancellationToken);
            switch (routing.Kind)
            {
                case InboundRoutingKind.MergedInto:
                    conversation.TicketNumber = routing.TicketNumber;
                    _ticketMoved = true;
                    continue;
                case InboundRoutingKind.NeedsFollowUp:
                    _followUpOf = conversation.TicketNumber;
                    conversation.TicketNumber = 0;
                    return routing;
                default:
                    // Accepted, or Missing: the number was stored with the conversation but the ticket never opened (a crash);
                    // it is opened under that same number.
                    return routing;
            }
        }
        throw new InvalidOperationException($"Ticket #{conversation.TicketNumber} is merged more than {MaxMergeHops} times deep.");
    }

    private async Task OpenTicketAsync(ConversationRecord conversation, InboundMessage message, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (conversation.TicketNumber == 0)
        {
            conversation.TicketNumber = await ticketNumbers.NextAsync(cancellationToken);
            // Store the pointer before the ticket exists, so a crash in between reopens the same number, never a second ticket.
            var writes = new WriteSet();
            if (_recordStored)
                writes.Update(conversation.Copy(), nameof(ConversationRecord.TicketNumber));
            else
                writes.Insert(conversation.Copy());
            await store.CommitAsync(writes, cancellationToken);
            _recordStored = true;
            _ticketMoved = false;
        }
        else if (!_recordStored)
        {
            await store.CommitAsync(new WriteSet().Insert(conversation.Copy()), cancellationToken);
            _recordStored = true;
        }
        // A follow-up belongs to whoever the identity belongs to now (the customer may have been merged since);
        // a conversation started in this very call has just resolved it.
        var customerId = _startedNow
            ? conversation.CustomerId
            : await GrainFactory.GetGrain<IIdentityGrain>(conversation.CustomerIdentity).ResolveCustomerAsync(message.Sender.DisplayName, cancellationToken);
        _startedNow = false;
        await GrainFactory.GetGrain<ITicketGrain>(conversation.TicketNumber).OpenAsync(new TicketOpening
        {
            Subject = TextRules.SubjectFor(message.Subject, message.Text),
            CustomerId = customerId,
            ConversationId = conversation.Id,
            ConversationKey = conversation.Key,
            Actor = conversation.CustomerIdentity,
            FollowUpOf = _followUpOf,
        }, cancellationToken);
        _followUpOf = null;
    }

    private async Task<AttachmentRecord> StoreAttachmentAsync(Guid messageId, InboundAttachment attachment, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var blob = await blobs.PutAsync(attachment.Content, cancellationToken);
        return new AttachmentRecord
        {
            Id = Guid.CreateVersion7(now),
            MessageId = messageId,
            FileName = AttachmentRules.SanitizeFileName(attachment.FileName),
            ContentType = AttachmentRules.SniffContentType(attachment.Content),
            DeclaredContentType = attachment.ContentType is { Length: <= 200 } declared ? declared : null,
            Length = blob.Length,
            Sha256 = blob.Sha256,
        };
    }

    private async Task<RawSourceRecord> StoreRawSourceAsync(Guid messageId, InboundMessage message, CancellationToken cancellationToken)
    {
        var raw = new RawSourceRecord { MessageId = messageId, ContentType = message.RawContentType, Length = message.RawSource.LongLength };
        if (message.RawSource.Length <= ingestOptions.Value.MaxInlineRawSourceBytes)
            raw.Content = message.RawSource;
        else
            raw.BlobSha256 = (await blobs.PutAsync(message.RawSource, cancellationToken)).Sha256;
        return raw;
    }

    private static IngestResult ResultFor(MessageRecord message, ConversationRecord conversation, bool duplicate) =>
        new(message.Id, message.ConversationId ?? conversation.Id, message.TicketNumber, conversation.CustomerId, duplicate);

    private IngestResult Remember(string externalId, IngestResult result)
    {
        if (_recent.TryAdd(externalId, result))
        {
            _recentOrder.Enqueue(externalId);
            if (_recentOrder.Count > RecentCapacity)
                _recent.Remove(_recentOrder.Dequeue());
        }
        return result;
    }
}
