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
/// A redelivery is recognised before anything has a side effect: first by the activation's recent ids, then by the
/// store's unique (channel account, external id) index. The order of commits is chosen so that a crash at any point
/// loses nothing acknowledged and a redelivery repairs whatever was half done: the ticket pointer is stored before
/// the ticket is opened, the ticket before the message, and the message before the caller is answered. The
/// conversation row is changed on a copy and swapped in after its commit. The message's commit requires its ticket
/// not to be merged (checked in the commit's transaction); a merge that landed after the ticket accepted the message
/// makes the conversation offer it again, to the merge target. A copy of the message stored at the same instant on
/// another thread wins the unique index; this call then withdraws the ticket (and the conversation) it opened for it.
/// Calls go conversation → ticket only (tickets never call conversations), so the two cannot deadlock.
/// </remarks>
public sealed class ConversationGrain(
    ICrmStore store,
    IBlobStore blobs,
    IBlobHolds blobHolds,
    IHtmlSanitizer sanitizer,
    ITicketNumberAllocator ticketNumbers,
    IOptions<IngestOptions> ingestOptions,
    TimeProvider time) : Grain, IConversationGrain
{
    private const int RecentCapacity = 1024;
    private const int MaxMergeHops = 16;

    private ConversationRecord? _record;
    // Fast path for redelivery while active; the unique index on (channel account, external id) is the guarantee.
    private readonly Dictionary<string, IngestResult> _recent = new(StringComparer.Ordinal);
    private readonly Queue<string> _recentOrder = new();

    /// <summary>Where one message goes: the working copy of the conversation and what routing decided for it.</summary>
    private sealed class Routing(ConversationRecord conversation, bool started)
    {
        public ConversationRecord Conversation { get; } = conversation;
        /// <summary>The conversation began with this message (its customer was resolved just now).</summary>
        public bool Started { get; } = started;
        /// <summary>A merge moved the conversation to another ticket; the pointer is stored with the message.</summary>
        public bool TicketMoved { get; set; }
        /// <summary>The current ticket is closed and the next one is its follow-up.</summary>
        public long? FollowUpOf { get; set; }
        /// <summary>The ticket this call opened, if it opened one.</summary>
        public long? Opened { get; set; }
        /// <summary>Set (the sender's identity key) when the conversation joins another customer's ticket as a participant.</summary>
        public string? Participant { get; set; }
    }

    public override async Task OnActivateAsync(CancellationToken cancellationToken) =>
        _record = await store.FindConversationAsync(this.GetPrimaryKeyString(), cancellationToken);

    public Task<ConversationSnapshot?> GetAsync() => Task.FromResult(_record?.ToSnapshot());

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

        // A redelivery this activation does not remember (after a restart, or one whose first copy went to another
        // thread) must not start a conversation, reopen, follow up or open anything. The store is asked before each
        // of those side effects: here for a new conversation, by the ticket before it changes, and below before a
        // ticket is opened. A message that only adds to an open ticket needs no read: its commit is refused whole.
        if (_record is null && await FindStoredAsync(accountId, message.ExternalMessageId, cancellationToken) is { } stored)
            return Remember(message.ExternalMessageId, stored);

        // A thread belongs to one sender: another sender on the same thread key would write into (and read the
        // replies of) someone else's conversation.
        if (_record is not null && GrainKeys.Identity(message.Sender.Kind, message.Sender.Value, accountId) != _record.CustomerIdentity)
            throw new DomainException(DomainErrorKind.Conflict,
                $"Thread '{threadKey}' belongs to another sender on this channel; give each customer's conversation its own thread key.", "threadKey");

        var now = time.GetUtcNow();
        var messageId = Guid.CreateVersion7(now);
        var previousTicket = _record?.TicketNumber;
        var routing = _record is null ? await StartAsync(message, now, cancellationToken) : new Routing(_record.Copy(), started: false);
        var conversation = routing.Conversation;
        if (routing.Started && message.JoinTicket is { } join and > 0)
        {
            // A participant's first message (an email Cc's reply): the pointer to the customer's ticket is stored before
            // the ticket lists this conversation, so a crash in between offers it to the same ticket again.
            conversation.TicketNumber = join;
            await store.CommitAsync(new WriteSet().Insert(conversation.Copy()), cancellationToken);
            _record = conversation.Copy();
            routing.Participant = conversation.CustomerIdentity;
        }
        else if (message.JoinTicket is { } again && again == conversation.TicketNumber)
            routing.Participant = conversation.CustomerIdentity; // a redelivery after a crash before the ticket listed it
        List<object>? content = null;
        // The bytes are held (across nodes) from their put until the commit that names them, or until this call gives
        // up: a knowledge-base delete or quarantine prune of the same bytes elsewhere must not remove them in between (EN3).
        HeldBlobs? held = null;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                var offered = _record is not null && conversation.TicketNumber != 0
                    ? await OfferToTicketAsync(routing, message, messageId, now, cancellationToken)
                    : null;
                if (offered is not { Kind: InboundRoutingKind.Accepted })
                {
                    if (_record is not null && await FindStoredAsync(accountId, message.ExternalMessageId, cancellationToken) is { } earlier)
                        return Remember(message.ExternalMessageId, earlier);
                    await OpenTicketAsync(routing, message, now, cancellationToken);
                }

                var record = NewMessageRecord(message, messageId, conversation, now);
                if (content is null)
                    (held, content) = await StoreContentAsync(messageId, message, now, cancellationToken);
                var writes = new WriteSet().Add(new RequireTicketNotMerged(conversation.TicketNumber)).Insert(record);
                foreach (var row in content)
                    writes.Insert(row);
                if (offered?.ActivityAt is { } activityAt)
                    writes.Update(new TicketRecord { Number = conversation.TicketNumber, Subject = "", UpdatedAt = activityAt, LastCustomerMessageAt = activityAt },
                        nameof(TicketRecord.UpdatedAt), nameof(TicketRecord.LastCustomerMessageAt));
                if (routing.TicketMoved)
                    writes.Update(conversation.Copy(), nameof(ConversationRecord.TicketNumber));
                try
                {
                    await store.CommitAsync(writes, cancellationToken);
                    _record = conversation;
                    return Remember(message.ExternalMessageId, new IngestResult(record.Id, conversation.Id, record.TicketNumber, conversation.CustomerId, Duplicate: false));
                }
                catch (StaleWriteException) when (attempt < MaxMergeHops)
                {
                    // The ticket was merged after it accepted the message: offer it again, which follows the merge to
                    // the ticket that now holds this conversation (and applies that ticket's rules, e.g. a reopen).
                }
                catch (DuplicateKeyException)
                {
                    // The same message committed concurrently on another thread of this channel.
                    var first = await store.FindMessageByExternalIdAsync(accountId, message.ExternalMessageId, cancellationToken)
                        ?? throw new InvalidOperationException($"Message {message.ExternalMessageId} was refused as a duplicate but is not stored.");
                    var duplicate = await DuplicateOfAsync(first, cancellationToken);
                    if (routing.Opened is { } opened)
                        await WithdrawAsync(routing, opened, previousTicket, cancellationToken);
                    return Remember(message.ExternalMessageId, duplicate);
                }
            }
        }
        finally
        {
            if (held is not null)
                await held.DisposeAsync();
        }
    }

    /// <summary>Takes back the ticket (and a conversation begun by this call) opened for a message that is a copy:
    /// an empty ticket would wait in the queues for an agent with nothing to answer. A crash before this leaves it,
    /// as before; an agent can close it.</summary>
    private async Task WithdrawAsync(Routing routing, long opened, long? previousTicket, CancellationToken cancellationToken)
    {
        var restoreTo = routing.Started ? null : previousTicket;
        if (!await GrainFactory.GetGrain<ITicketGrain>(opened).WithdrawIfEmptyAsync(routing.Conversation.Id, restoreTo, cancellationToken))
            return;
        if (restoreTo is { } previous)
        {
            var restored = routing.Conversation.Copy();
            restored.TicketNumber = previous;
            _record = restored;
        }
        else
            _record = null;
    }

    private MessageRecord NewMessageRecord(InboundMessage message, Guid messageId, ConversationRecord conversation, DateTimeOffset now) => new()
    {
        Id = messageId,
        ConversationId = conversation.Id,
        TicketNumber = conversation.TicketNumber,
        Direction = MessageDirection.Inbound,
        ChannelAccountId = conversation.ChannelAccountId,
        ExternalId = message.ExternalMessageId,
        Author = conversation.CustomerIdentity,
        Subject = message.Subject,
        Text = message.Text ?? (message.Html is null ? null : sanitizer.ToPlainText(message.Html)),
        Html = message.Html is null ? null : sanitizer.Sanitize(message.Html),
        CreatedAt = now,
        SentAt = message.SentAt,
        Delivery = DeliveryStatus.None,
        AttachmentCount = message.Attachments.Count,
        Cc = message.Cc.Count == 0 ? null : string.Join('\n', message.Cc.Take(MaxStoredCc)),
    };

    /// <summary>How many of an inbound mail's other recipients are kept with it.</summary>
    private const int MaxStoredCc = 50;

    /// <summary>The message's attachments and raw source: blobs written (content-addressed, so a retry rewrites nothing)
    /// under a hold the caller releases after the commit, and their rows.</summary>
    private async Task<(HeldBlobs Held, List<object> Rows)> StoreContentAsync(Guid messageId, InboundMessage message, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var rawInBlob = message.RawSource.Length > ingestOptions.Value.MaxInlineRawSourceBytes;
        var contents = message.Attachments.Select(a => (ReadOnlyMemory<byte>)a.Content).ToList();
        if (rawInBlob)
            contents.Add(message.RawSource);
        var held = await HeldBlobs.HoldAndPutAsync(blobHolds, blobs, contents, cancellationToken);
        var rows = new List<object>(message.Attachments.Count + 1);
        // Ids one millisecond apart (v7), so every reading of the files, ordered by id, keeps the message's order (ER10).
        for (var i = 0; i < message.Attachments.Count; i++)
        {
            var attachment = message.Attachments[i];
            var blob = held.Blobs[i];
            rows.Add(new AttachmentRecord
            {
                Id = Guid.CreateVersion7(now.AddMilliseconds(i)),
                MessageId = messageId,
                FileName = AttachmentRules.SanitizeFileName(attachment.FileName),
                ContentType = AttachmentRules.SniffContentType(attachment.Content),
                DeclaredContentType = attachment.ContentType is { Length: <= 200 } declared ? declared : null,
                Length = blob.Length,
                Sha256 = blob.Sha256,
            });
        }
        var raw = new RawSourceRecord { MessageId = messageId, ContentType = message.RawContentType, Length = message.RawSource.LongLength };
        if (rawInBlob)
            raw.BlobSha256 = held.Blobs[^1].Sha256;
        else
            raw.Content = message.RawSource;
        rows.Add(raw);
        return (held, rows);
    }

    private async Task<Routing> StartAsync(InboundMessage message, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var account = await GrainFactory.GetGrain<IChannelAccountGrain>(message.ChannelAccountId).GetAsync()
            ?? throw new DomainException(DomainErrorKind.NotFound, $"No channel '{message.ChannelAccountId}'.", "channelId");
        var identityKey = GrainKeys.Identity(message.Sender.Kind, message.Sender.Value, message.ChannelAccountId);
        var customerId = await GrainFactory.GetGrain<IIdentityGrain>(identityKey).ResolveCustomerAsync(message.Sender.DisplayName, cancellationToken);
        return new Routing(new ConversationRecord
        {
            Id = Guid.CreateVersion7(now),
            Key = this.GetPrimaryKeyString(),
            ChannelAccountId = message.ChannelAccountId,
            Channel = account.Kind,
            ThreadKey = message.ThreadKey,
            CustomerId = customerId,
            CustomerIdentity = identityKey,
            CreatedAt = now,
        }, started: true);
    }

    /// <summary>Offers the message to the current ticket, following merges; anything but Accepted means a ticket must be opened.</summary>
    private async Task<InboundRouting> OfferToTicketAsync(Routing routing, InboundMessage message, Guid messageId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var conversation = routing.Conversation;
        var refreshed = false;
        for (var hop = 0; ; hop++)
        {
            if (hop == MaxMergeHops)
            {
                // A long chain of merges since this activation read its row: the store has the final pointer.
                if (refreshed || !await RefreshAsync(routing, cancellationToken))
                    throw new InvalidOperationException($"Ticket #{conversation.TicketNumber} is merged more than {MaxMergeHops} times deep.");
                refreshed = true;
                hop = 0;
            }
            var offered = await GrainFactory.GetGrain<ITicketGrain>(conversation.TicketNumber)
                .OnInboundMessageAsync(new InboundNotice(messageId, conversation.Id, now, conversation.CustomerId, message.ChannelAccountId, message.ExternalMessageId, message.AutomaticReason is not null,
                    routing.Participant), cancellationToken);
            switch (offered.Kind)
            {
                case InboundRoutingKind.Duplicate:
                    return offered;
                case InboundRoutingKind.MergedInto:
                    conversation.TicketNumber = offered.TicketNumber;
                    routing.TicketMoved = true;
                    continue;
                case InboundRoutingKind.NeedsFollowUp:
                    routing.FollowUpOf = conversation.TicketNumber;
                    conversation.TicketNumber = 0;
                    return offered;
                case InboundRoutingKind.Foreign when !refreshed && await RefreshAsync(routing, cancellationToken):
                    // A merge (of tickets or customers) moved this conversation since the activation read its row.
                    refreshed = true;
                    continue;
                case InboundRoutingKind.Foreign:
                    // The number is someone else's ticket: never join it; open a new ticket under a new number.
                    conversation.TicketNumber = 0;
                    return offered;
                default:
                    // Accepted, or Missing: the number was stored with the conversation but the ticket never opened (a crash);
                    // it is opened under that same number.
                    return offered;
            }
        }
    }

    /// <summary>Takes the ticket and customer from the stored row when merges changed them; false when nothing changed.</summary>
    private async Task<bool> RefreshAsync(Routing routing, CancellationToken cancellationToken)
    {
        var stored = await store.FindConversationAsync(this.GetPrimaryKeyString(), cancellationToken);
        var conversation = routing.Conversation;
        if (stored is null || (stored.TicketNumber == conversation.TicketNumber && stored.CustomerId == conversation.CustomerId))
            return false;
        conversation.TicketNumber = stored.TicketNumber;
        conversation.CustomerId = stored.CustomerId;
        routing.TicketMoved = false;
        return true;
    }

    private async Task OpenTicketAsync(Routing routing, InboundMessage message, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var conversation = routing.Conversation;
        // A follow-up belongs to whoever the identity belongs to now (the customer may have been merged since);
        // a conversation started in this very call has just resolved it.
        var customerId = routing.Started
            ? conversation.CustomerId
            : await GrainFactory.GetGrain<IIdentityGrain>(conversation.CustomerIdentity).ResolveCustomerAsync(message.Sender.DisplayName, cancellationToken);
        for (var attempt = 1; ; attempt++)
        {
            if (conversation.TicketNumber == 0 || _record is null)
            {
                if (conversation.TicketNumber == 0)
                    conversation.TicketNumber = await ticketNumbers.NextAsync(cancellationToken);
                // Store the pointer before the ticket exists, so a crash in between reopens the same number, never a second ticket.
                var writes = _record is null
                    ? new WriteSet().Insert(conversation.Copy())
                    : new WriteSet().Update(conversation.Copy(), nameof(ConversationRecord.TicketNumber));
                await store.CommitAsync(writes, cancellationToken);
                _record = conversation.Copy();
                routing.TicketMoved = false;
            }
            try
            {
                await GrainFactory.GetGrain<ITicketGrain>(conversation.TicketNumber).OpenAsync(new TicketOpening
                {
                    Subject = TextRules.SubjectFor(message.Subject, message.Text),
                    CustomerId = customerId,
                    ConversationId = conversation.Id,
                    ConversationKey = conversation.Key,
                    Actor = conversation.CustomerIdentity,
                    FollowUpOf = routing.FollowUpOf,
                }, cancellationToken);
                routing.Opened = conversation.TicketNumber;
                return;
            }
            catch (DomainException ex) when (ex.Kind == DomainErrorKind.Conflict && attempt < 3)
            {
                // The number this conversation reserved was opened by another conversation meanwhile (a number
                // reserved before a crash): take a new one rather than refuse the customer's message.
                conversation.TicketNumber = 0;
            }
        }
    }

    private async Task<IngestResult?> FindStoredAsync(string accountId, string externalId, CancellationToken cancellationToken) =>
        await store.FindMessageByExternalIdAsync(accountId, externalId, cancellationToken) is { } stored
            ? await DuplicateOfAsync(stored, cancellationToken)
            : null;

    /// <summary>The answer for a message already stored: where its first copy went.</summary>
    private async Task<IngestResult> DuplicateOfAsync(MessageRecord stored, CancellationToken cancellationToken)
    {
        var conversation = stored.ConversationId == _record?.Id
            ? _record
            : await store.FindConversationAsync(stored.ConversationId!.Value, cancellationToken)
                ?? throw new InvalidOperationException($"Message {stored.Id} names conversation {stored.ConversationId}, which is not stored.");
        return new IngestResult(stored.Id, conversation!.Id, stored.TicketNumber, conversation.CustomerId, Duplicate: true);
    }

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
