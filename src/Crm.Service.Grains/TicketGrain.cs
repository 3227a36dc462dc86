using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Grains;

/// <summary>
/// A ticket: the single writer of its row, its audit history, its notes and its agents' replies.
/// A resolved ticket closes by a durable reminder once the reopen window has passed.
/// </summary>
/// <remarks>
/// Every change is made to a copy of the row and swapped in only after its commit succeeded, so a failed commit
/// leaves the activation exactly as the database is. The rules themselves are in <see cref="TicketRules"/>.
/// </remarks>
public sealed class TicketGrain(
    ICrmStore store,
    ITicketNumberAllocator ticketNumbers,
    IOutboxSignal outbox,
    IHtmlSanitizer sanitizer,
    IBlobStore blobs,
    IBlobHolds blobHolds,
    IOptions<TicketOptions> options,
    TimeProvider time,
    ILogger<TicketGrain> logger) : Grain, ITicketGrain, IRemindable
{
    internal const string AutoCloseReminder = "auto-close";

    private static readonly string[] ColumnsButCustomerActivity = typeof(TicketRecord).GetProperties()
        .Select(p => p.Name)
        .Where(name => name is not (nameof(TicketRecord.Number) or nameof(TicketRecord.LastCustomerMessageAt)))
        .ToArray();

    private TicketRecord? _record;
    private bool _loaded;
    private Task<TicketRecord?>? _loading;

    private long Number => this.GetPrimaryKeyLong();

    // The row is loaded by the first call that needs it, not on activation: a ticket is usually activated by
    // OpenAsync under a freshly allocated number, where a read would only confirm that nothing is there.
    // GetAsync interleaves with other calls, so two loads may overlap: they share one read, and a read that
    // finishes after a commit never replaces the committed row.
    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        if (_loaded)
            return;
        _loading ??= store.FindTicketAsync(Number, CancellationToken.None);
        try
        {
            var record = await _loading.WaitAsync(cancellationToken);
            if (!_loaded)
            {
                _record = record;
                _loaded = true;
            }
        }
        finally
        {
            if (_loading is { IsCompleted: true })
                _loading = null;
        }
    }

    private void Committed(TicketRecord record)
    {
        _record = record;
        _loaded = true;
    }

    public async Task<TicketSnapshot?> GetAsync()
    {
        await LoadAsync(CancellationToken.None);
        return _record?.ToSnapshot();
    }

    public async Task<TicketSnapshot> OpenAsync(TicketOpening opening, CancellationToken cancellationToken = default)
    {
        if (_loaded && _record is not null)
            return SameOpeningOrConflict(opening);
        var now = time.GetUtcNow();
        var record = new TicketRecord
        {
            Number = Number,
            Subject = opening.Subject,
            Status = TicketStatus.New,
            Priority = opening.Priority ?? TicketPriority.Normal,
            Team = opening.Team,
            CustomerId = opening.CustomerId,
            ConversationIds = [opening.ConversationId],
            CreatedAt = now,
            UpdatedAt = now,
            LastCustomerMessageAt = opening.SplitMessageId is null ? now : null,
            FollowUpOf = opening.FollowUpOf,
        };
        var writes = new WriteSet()
            .Insert(record.Copy())
            .Insert(Audit.Ticket(Number, "created", opening.Actor, now));
        if (opening.FollowUpOf is { } previous)
            writes.Insert(Audit.Ticket(Number, "follow-up", opening.Actor, now, "followUpOf", null, TicketRules.Format(previous)));
        if (opening.SplitMessageId is { } messageId)
        {
            writes.Add(new MoveMessage(messageId, Number));
            writes.Insert(Audit.Ticket(Number, "split", opening.Actor, now, "splitFrom", TicketRules.Format(opening.SplitFrom), messageId.ToString()));
        }
        try
        {
            await store.CommitAsync(writes, cancellationToken);
        }
        catch (DuplicateKeyException)
        {
            // Opened before this activation (a retried open after a lost answer): answer from the stored row.
            _loaded = false;
            await LoadAsync(cancellationToken);
            if (_record is null)
                throw;
            return SameOpeningOrConflict(opening);
        }
        Committed(record);
        return record.ToSnapshot();
    }

    /// <summary>A retried open (after a crash or a lost answer) is harmless; anything else is a bug in the caller.</summary>
    private TicketSnapshot SameOpeningOrConflict(TicketOpening opening) =>
        _record!.ConversationIds.Contains(opening.ConversationId) && opening.SplitMessageId is null
            ? _record.ToSnapshot()
            : throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} already exists.", "number");

    public async Task<InboundRouting> OnInboundMessageAsync(InboundNotice notice, CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        if (_record is null)
            return new InboundRouting(InboundRoutingKind.Missing, Number);
        if (_record.MergedInto is { } target)
            return new InboundRouting(InboundRoutingKind.MergedInto, target);
        if (!TicketRules.AcceptsConversation(_record, notice.ConversationId, notice.CustomerId) && notice.Participant is null)
            return new InboundRouting(InboundRoutingKind.Foreign, Number);

        var now = time.GetUtcNow();
        var effect = TicketRules.OnCustomerMessage(_record, now, options.Value.ReopenWindow, notice.Automatic);
        // A message that would change this ticket (reopen, close, follow up, join) is first checked against the
        // store: a redelivery the conversation's memory missed (after a restart) must change nothing. A message
        // that only adds activity skips the read; if it is a redelivery, its commit is refused as a whole.
        if ((effect != CustomerMessageEffect.Join || !_record.ConversationIds.Contains(notice.ConversationId))
            && await store.FindMessageByExternalIdAsync(notice.ChannelAccountId, notice.ExternalMessageId, cancellationToken) is not null)
            return new InboundRouting(InboundRoutingKind.Duplicate, Number);
        var next = _record.Copy();
        var writes = new WriteSet();
        switch (effect)
        {
            case CustomerMessageEffect.FollowUp:
                return new InboundRouting(InboundRoutingKind.NeedsFollowUp, Number);
            case CustomerMessageEffect.CloseThenFollowUp:
                // The auto-close reminder has not ticked yet; close now so the ticket's state matches the rule.
                await CloseAsync(Audit.System, now, cancellationToken);
                return new InboundRouting(InboundRoutingKind.NeedsFollowUp, Number);
            case CustomerMessageEffect.Reopen:
                // The customer wrote again: the ticket needs an agent.
                TicketRules.ApplyStatus(next, TicketStatus.Open, now);
                AuditDiff(_record, next, "customer-replied", Audit.System, now, writes);
                break;
        }
        var joined = !next.ConversationIds.Contains(notice.ConversationId);
        if (joined && notice.Participant is { } participant && !TicketRules.AcceptsConversation(_record, notice.ConversationId, notice.CustomerId))
        {
            // Someone the thread copied in (an email Cc) replied: their conversation joins first in the list, so the
            // customer's stays the last one, the default target of an agent's reply.
            next.ConversationIds.Insert(0, notice.ConversationId);
            writes.Insert(Audit.Ticket(Number, "participant-joined", participant, now, "cc", null, participant));
        }
        else if (joined)
            next.ConversationIds.Add(notice.ConversationId);
        next.LastCustomerMessageAt = now;
        next.UpdatedAt = now;
        if (writes.IsEmpty && !joined)
        {
            // Only the activity time changed: the conversation stores it with the message (see InboundRouting.ActivityAt),
            // or not at all if that commit fails. The activation does not take it: it would be ahead of the database.
            // Full-row writes leave LastCustomerMessageAt alone (see CommitAsync), so they never take it back either.
            return new InboundRouting(InboundRoutingKind.Accepted, Number, now);
        }
        await CommitAsync(next, writes, cancellationToken);
        return new InboundRouting(InboundRoutingKind.Accepted, Number);
    }

    public async Task<bool> WithdrawIfEmptyAsync(Guid conversationId, long? restorePointerTo, CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        // Untouched since it was opened: any change (an agent's, a join) moves UpdatedAt.
        if (_record is not { Status: TicketStatus.New, MergedInto: null } record || record.UpdatedAt != record.CreatedAt
            || record.ConversationIds is not [var only] || only != conversationId)
            return false;
        try
        {
            await store.CommitAsync(new WriteSet().Add(new WithdrawEmptyTicket(Number, conversationId, restorePointerTo)), cancellationToken);
        }
        catch (StaleWriteException)
        {
            return false;
        }
        _record = null;
        _loaded = true;
        DeactivateOnIdle();
        return true;
    }

    public async Task<MessageSnapshot> ReplyAsync(AgentReply reply, CancellationToken cancellationToken = default)
    {
        InputLimits.CheckReply(reply);
        await LoadAsync(cancellationToken);
        var current = Existing();
        var fingerprint = reply.RequestId is null ? null : TicketRules.ReplyFingerprint(Number, reply);
        if (reply.RequestId is { } requestId && await store.FindMessageByIdempotencyKeyAsync(requestId, cancellationToken) is { } earlier)
            return await SameReplyOrRefuseAsync(earlier, fingerprint, cancellationToken);
        // The refusals of a merged ticket never name the ticket it went into: that one may be in a restricted team the
        // caller is not in (review FX5); the ticket's page links to it for those who may see it.
        if (current.MergedInto is not null)
            throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} was merged into another ticket; reply on that one.", "number");
        if (current.Status == TicketStatus.Closed)
            throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} is closed; the customer's next message opens a follow-up.", "status");
        if (string.IsNullOrWhiteSpace(reply.Text))
            throw new DomainException(DomainErrorKind.Invalid, "A reply needs text.", "text");
        var settings = options.Value;
        if (reply.Attachments.Count > settings.MaxReplyAttachments)
            throw new DomainException(DomainErrorKind.TooLarge, $"At most {settings.MaxReplyAttachments} files per reply.", "attachments");
        if (reply.Attachments.FirstOrDefault(a => a.Content.LongLength > settings.MaxReplyAttachmentBytes) is { } tooBig)
            throw new DomainException(DomainErrorKind.TooLarge, $"'{AttachmentRules.SanitizeFileName(tooBig.FileName)}' is {tooBig.Content.LongLength} bytes; the limit is {settings.MaxReplyAttachmentBytes}.", "attachments");
        if (reply.Attachments.Sum(a => a.Content.LongLength) is var totalBytes && totalBytes > settings.MaxReplyTotalBytes)
            throw new DomainException(DomainErrorKind.TooLarge, $"The files are {totalBytes} bytes together; a reply may carry at most {settings.MaxReplyTotalBytes}.", "attachments");
        if (reply.Cc.Count > settings.MaxReplyCc)
            throw new DomainException(DomainErrorKind.TooLarge, $"At most {settings.MaxReplyCc} Cc addresses per reply.", "cc");
        if (reply.Cc.Any(a => string.IsNullOrWhiteSpace(a) || a.Length > InputLimits.MaxEmailAddressLength || a.Contains('\n') || a.Contains('\r')
                || !IdentityNormalizer.IsEmailAddress(TicketRules.CcAddressOf(a))))
            throw new DomainException(DomainErrorKind.Invalid, "A Cc entry is not a mailbox the mail sender takes.", "cc");

        var conversationId = reply.ConversationId ?? current.ConversationIds.LastOrDefault();
        var conversation = conversationId == Guid.Empty ? null : await store.FindConversationAsync(conversationId, cancellationToken);
        if (conversation is null || !current.ConversationIds.Contains(conversation.Id))
            throw new DomainException(DomainErrorKind.Invalid, $"Ticket #{Number} has no conversation {conversationId} to reply on.", "conversationId");
        if (reply.Cc.Count > 0 && conversation.Channel != ChannelKind.Email)
            throw new DomainException(DomainErrorKind.Invalid, $"Only email replies can copy someone in; this conversation is {conversation.Channel}.", "cc");
        // Only these senders carry files; elsewhere a reply marked sent would reach the customer without them.
        if (reply.Attachments.Count > 0 && conversation.Channel is not (ChannelKind.Email or ChannelKind.Telegram))
            throw new DomainException(DomainErrorKind.Invalid, $"Files can be sent on email and Telegram; this conversation is {conversation.Channel}. Send a link instead.", "attachments");

        var now = time.GetUtcNow();
        var message = new MessageRecord
        {
            Id = Guid.CreateVersion7(now),
            ConversationId = conversation.Id,
            TicketNumber = Number,
            Direction = MessageDirection.Outbound,
            ChannelAccountId = conversation.ChannelAccountId,
            IdempotencyKey = reply.RequestId,
            RequestHash = fingerprint,
            Author = reply.Actor,
            Text = reply.Text,
            // The same policy as for every stored HTML: what an agent pastes is shown to other agents and sent out.
            Html = reply.Html is null ? null : sanitizer.Sanitize(reply.Html),
            CreatedAt = now,
            Delivery = DeliveryStatus.Queued,
            AttachmentCount = reply.Attachments.Count,
            Cc = reply.Cc.Count == 0 ? null : string.Join('\n', reply.Cc),
        };
        // The files are durable (fsynced blobs) before the commit that holds their rows and the outbox row, so the
        // dispatcher never sees a reply without its files; a crash before the commit leaves only unnamed blobs.
        // The new bytes are written (fsynced) first, outside the process-wide blob gate, so one large reply does not hold
        // up every other file operation (review EM3). Under the gate each file is put again, which only checks that its
        // bytes still exist (or restores them if a delete took them meanwhile), and the commit names them (review ER8):
        // the same bytes may be a knowledge-base file or a quarantined mail whose row a deleter is removing.
        // Across nodes the gate is not enough: a durable hold on the files' hashes, taken before the first put and
        // released after the commit, keeps every node's deleters off them (and waits for a delete in progress).
        await using var held = await HeldBlobs.HoldAndPutAsync(blobHolds, blobs, [.. reply.Attachments.Select(f => (ReadOnlyMemory<byte>)f.Content)], cancellationToken);
        var gated = reply.Attachments.Count > 0;
        if (gated)
            await BlobGate.Semaphore.WaitAsync(cancellationToken);
        try
        {
            return await CommitReplyAsync(reply, current, conversation, message, fingerprint, now, cancellationToken);
        }
        finally
        {
            if (gated)
                BlobGate.Semaphore.Release();
        }
    }

    private async Task<MessageSnapshot> CommitReplyAsync(AgentReply reply, TicketRecord current, ConversationRecord conversation, MessageRecord message,
        string? fingerprint, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var attachments = new List<AttachmentRecord>(reply.Attachments.Count);
        foreach (var file in reply.Attachments)
        {
            var blob = await blobs.PutAsync(file.Content, cancellationToken);
            attachments.Add(new AttachmentRecord
            {
                // Ids in upload order (one millisecond apart, v7), so every reading of the files keeps the agent's order.
                Id = Guid.CreateVersion7(now.AddMilliseconds(attachments.Count)),
                MessageId = message.Id,
                FileName = AttachmentRules.SanitizeFileName(file.FileName),
                ContentType = AttachmentRules.ReplyContentType(file.FileName, file.Content),
                DeclaredContentType = file.ContentType is { Length: <= 200 } declared ? declared : null,
                Length = blob.Length,
                Sha256 = blob.Sha256,
            });
        }
        var writes = new WriteSet()
            .Insert(message.Copy())
            .Insert(new OutboxRecord
            {
                Id = message.Id,
                MessageId = message.Id,
                ConversationKey = conversation.Key,
                ChannelAccountId = conversation.ChannelAccountId,
                Channel = conversation.Channel,
                State = OutboxState.Pending,
                NextAttemptAt = now,
                CreatedAt = now,
            });
        foreach (var attachment in attachments)
            writes.Insert(attachment);
        var next = current.Copy();
        var status = reply.SetStatus ?? (current.Status == TicketStatus.New ? TicketStatus.Open : current.Status);
        TicketRules.EnsureStatusChangeAllowed(current, status);
        TicketRules.ApplyStatus(next, status, now);
        AuditDiff(current, next, "changed", reply.Actor, now, writes);
        // Who else got a copy of the conversation (and its files) is part of the ticket's history (review ER9).
        if (reply.Cc.Count > 0)
            writes.Insert(Audit.Ticket(Number, "replied", reply.Actor, now, "cc", null, string.Join(", ", reply.Cc)));
        next.FirstResponseAt ??= now;
        next.LastAgentReplyAt = now;
        next.UpdatedAt = now;
        try
        {
            await CommitAsync(next, writes, cancellationToken);
        }
        catch (DuplicateKeyException) when (reply.RequestId is not null)
        {
            // The same key committed concurrently (another ticket, or a retry racing the first request).
            var stored = await store.FindMessageByIdempotencyKeyAsync(reply.RequestId, cancellationToken)
                ?? throw new InvalidOperationException($"Reply {reply.RequestId} was refused as a duplicate but is not stored.");
            return await SameReplyOrRefuseAsync(stored, fingerprint, cancellationToken);
        }
        outbox.Notify();
        return message.ToSnapshot(attachments);
    }

    /// <summary>A replayed reply answers with its files as the first answer did (review ER12): a client that checks them
    /// must not take a replay for a reply without files and send it again under a new key.</summary>
    private async Task<MessageSnapshot> SameReplyOrRefuseAsync(MessageRecord earlier, string? fingerprint, CancellationToken cancellationToken)
    {
        var snapshot = SameRequestOrRefuse(earlier, fingerprint);
        return earlier.AttachmentCount == 0 ? snapshot : earlier.ToSnapshot(await store.FindAttachmentsAsync(earlier.Id, cancellationToken));
    }

    private static MessageSnapshot SameRequestOrRefuse(MessageRecord earlier, string? fingerprint) =>
        earlier.RequestHash == fingerprint
            ? earlier.ToSnapshot()
            : throw new DomainException(DomainErrorKind.Invalid,
                "This Idempotency-Key was already used for a different request; use a new key for a new reply.", "Idempotency-Key");

    public async Task<MessageSnapshot> AddNoteAsync(string actor, string text, string? requestId = null, CancellationToken cancellationToken = default)
    {
        InputLimits.CheckNote(text);
        InputLimits.CheckLength(requestId, InputLimits.MaxRequestIdLength, "requestId");
        await LoadAsync(cancellationToken);
        var next = Existing().Copy();
        if (string.IsNullOrWhiteSpace(text))
            throw new DomainException(DomainErrorKind.Invalid, "A note needs text.", "text");
        var fingerprint = requestId is null ? null : TicketRules.NoteFingerprint(Number, text);
        if (requestId is not null && await store.FindMessageByIdempotencyKeyAsync(requestId, cancellationToken) is { } earlier)
            return SameRequestOrRefuse(earlier, fingerprint);
        var now = time.GetUtcNow();
        var note = new MessageRecord
        {
            Id = Guid.CreateVersion7(now),
            TicketNumber = Number,
            Direction = MessageDirection.Note,
            IdempotencyKey = requestId,
            RequestHash = fingerprint,
            Author = actor,
            Text = text,
            CreatedAt = now,
        };
        next.UpdatedAt = now;
        try
        {
            await CommitAsync(next, new WriteSet().Insert(note.Copy()), cancellationToken);
        }
        catch (DuplicateKeyException) when (requestId is not null)
        {
            var stored = await store.FindMessageByIdempotencyKeyAsync(requestId, cancellationToken)
                ?? throw new InvalidOperationException($"Note {requestId} was refused as a duplicate but is not stored.");
            return SameRequestOrRefuse(stored, fingerprint);
        }
        return note.ToSnapshot();
    }

    public async Task<MessageSnapshot> LogCallAsync(PhoneCall call, string actor, string? requestId = null, CancellationToken cancellationToken = default)
    {
        InputLimits.CheckLength(requestId, InputLimits.MaxRequestIdLength, "requestId");
        var now = time.GetUtcNow();
        PhoneCalls.Check(call, now);
        await LoadAsync(cancellationToken);
        var current = Existing();
        var fingerprint = requestId is null ? null : PhoneCalls.Fingerprint("ticket:" + Number, call);
        if (requestId is not null && await store.FindMessageByIdempotencyKeyAsync(requestId, cancellationToken) is { } earlier)
            return SameRequestOrRefuse(earlier, fingerprint);
        if (current.MergedInto is not null)
            throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} was merged into another ticket; log the call on that one.", "number");
        var next = current.Copy();
        var writes = new WriteSet();
        // A call is a contact on the phone channel and moves the ticket as a message of that direction would (as Zammad
        // treats its phone articles by sender); only a call that connected is the agent's response (TicketRules.ApplyCall).
        TicketRules.EnsureCallAllowed(current, call.Direction, now, options.Value.ReopenWindow);
        TicketRules.ApplyCall(next, call, now, options.Value.ReopenWindow);
        AuditDiff(current, next, "call-logged", actor, now, writes);
        // A message of the phone channel without a conversation: nothing to send (no outbox row), no delivery status.
        var message = new MessageRecord
        {
            Id = Guid.CreateVersion7(now),
            TicketNumber = Number,
            Direction = call.Direction,
            ChannelAccountId = PhoneCalls.Channel,
            IdempotencyKey = requestId,
            RequestHash = fingerprint,
            Author = actor,
            Text = PhoneCalls.Text(call),
            CreatedAt = now,
            SentAt = call.At,
            Delivery = DeliveryStatus.None,
        };
        next.UpdatedAt = now;
        try
        {
            await CommitAsync(next, writes.Insert(message.Copy())
                .Insert(Audit.Ticket(Number, "call-logged", actor, now, "phone", null, call.Phone)), cancellationToken);
        }
        catch (DuplicateKeyException) when (requestId is not null)
        {
            var stored = await store.FindMessageByIdempotencyKeyAsync(requestId, cancellationToken)
                ?? throw new InvalidOperationException($"Call {requestId} was refused as a duplicate but is not stored.");
            return SameRequestOrRefuse(stored, fingerprint);
        }
        return message.ToSnapshot();
    }

    public async Task<TicketSnapshot> ChangeAsync(TicketChange change, string actor, CancellationToken cancellationToken = default)
    {
        InputLimits.CheckTicketChange(change);
        await LoadAsync(cancellationToken);
        var current = Existing();
        if (current.MergedInto is not null)
            throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} was merged into another ticket; change that one.", "number");
        var now = time.GetUtcNow();
        var next = current.Copy();
        TicketRules.ApplyChange(next, change, now);
        var writes = new WriteSet();
        AuditDiff(current, next, "changed", actor, now, writes);
        // The request id is stored in the same commit as the change (or alone when it changed nothing, so a retry
        // after a colleague's change does not apply it then): a second call with it fails on the key and changes nothing.
        var key = change.RequestId is { } requestId ? new RequestKeyRecord { Key = requestId, TicketNumber = Number, At = now } : null;
        try
        {
            if (writes.IsEmpty)
            {
                if (key is not null)
                    await store.CommitAsync(new WriteSet().Insert(key), cancellationToken);
                return current.ToSnapshot();
            }
            if (key is not null)
                writes.Insert(key);
            next.UpdatedAt = now;
            await CommitAsync(next, writes, cancellationToken);
        }
        catch (DuplicateKeyException) when (key is not null)
        {
            return Existing().ToSnapshot();
        }
        return next.ToSnapshot();
    }

    public async Task<TicketSnapshot> MergeIntoAsync(long targetNumber, string actor, CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        var current = Existing();
        if (targetNumber == Number)
            throw new DomainException(DomainErrorKind.Invalid, "A ticket cannot be merged into itself.", "into");
        if (current.MergedInto is { } existing)
        {
            if (existing != targetNumber)
                throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} was already merged into another ticket.", "into");
        }
        else
        {
            var target = await GrainFactory.GetGrain<ITicketGrain>(targetNumber).GetAsync()
                ?? throw new DomainException(DomainErrorKind.NotFound, $"No ticket #{targetNumber}.", "into");
            if (target.MergedInto is not null)
                throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{targetNumber} was itself merged into another ticket; merge into that one.", "into");
            if (target.CustomerId != current.CustomerId)
                throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{targetNumber} belongs to another customer; merge the customers first.", "into");

            var now = time.GetUtcNow();
            var next = current.Copy();
            // History moves first, then this ticket's last entries are written: they stay here to explain where it went.
            var writes = new WriteSet().Add(new MoveTicketContent(Number, targetNumber));
            TicketRules.ApplyStatus(next, TicketStatus.Closed, now);
            AuditDiff(current, next, "changed", actor, now, writes);
            writes.Insert(Audit.Ticket(Number, "merged", actor, now, "mergedInto", null, TicketRules.Format(targetNumber)));
            next.MergedInto = targetNumber;
            next.UpdatedAt = now;
            try
            {
                await CommitAsync(next, writes, cancellationToken);
            }
            catch (StaleWriteException)
            {
                throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{targetNumber} no longer exists; nothing was merged.", "into");
            }
        }
        await GrainFactory.GetGrain<ITicketGrain>(targetNumber).AbsorbAsync(Number, _record!.ConversationIds, actor, cancellationToken);
        return _record.ToSnapshot();
    }

    public async Task AbsorbAsync(long sourceNumber, IReadOnlyList<Guid> conversationIds, string actor, CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        var next = Existing().Copy();
        var now = time.GetUtcNow();
        foreach (var id in conversationIds.Where(id => !next.ConversationIds.Contains(id)))
            next.ConversationIds.Add(id);
        next.UpdatedAt = now;
        await CommitAsync(next, new WriteSet().Insert(Audit.Ticket(Number, "merged-in", actor, now, "mergedFrom", null, TicketRules.Format(sourceNumber))), cancellationToken);
    }

    public async Task<TicketSnapshot> SplitAsync(Guid messageId, string actor, CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        var current = Existing();
        var message = await store.FindMessageAsync(messageId, cancellationToken);
        if (message is null || message.TicketNumber != Number)
            throw new DomainException(DomainErrorKind.NotFound, $"Ticket #{Number} has no message {messageId}.", "messageId");
        if (message.ConversationId is not { } conversationId)
            throw new DomainException(DomainErrorKind.Invalid, "An internal note cannot be split into a ticket of its own.", "messageId");
        var conversation = await store.FindConversationAsync(conversationId, cancellationToken)
            ?? throw new InvalidOperationException($"Message {messageId} names conversation {conversationId}, which is not stored.");

        var number = await ticketNumbers.NextAsync(cancellationToken);
        var created = await GrainFactory.GetGrain<ITicketGrain>(number).OpenAsync(new TicketOpening
        {
            Subject = TextRules.SubjectFor(message.Subject, message.Text),
            CustomerId = current.CustomerId,
            ConversationId = conversationId,
            ConversationKey = conversation.Key,
            Actor = actor,
            SplitMessageId = messageId,
            SplitFrom = Number,
            // The split-off message stays as visible as it was: a restricted team's ticket must not become everyone's.
            Team = current.Team,
            Priority = current.Priority,
        }, cancellationToken);
        var now = time.GetUtcNow();
        var next = Existing().Copy();
        next.UpdatedAt = now;
        await CommitAsync(next, new WriteSet()
            .Insert(Audit.Ticket(Number, "split", actor, now, "splitInto", messageId.ToString(), TicketRules.Format(number))), cancellationToken);
        return created;
    }

    public async Task ChangeCustomerAsync(Guid customerId, string actor, CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        var current = Existing();
        if (current.CustomerId == customerId)
            return;
        var now = time.GetUtcNow();
        var next = current.Copy();
        next.CustomerId = customerId;
        next.UpdatedAt = now;
        var writes = new WriteSet();
        AuditDiff(current, next, "changed", actor, now, writes);
        await CommitAsync(next, writes, cancellationToken);
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        await LoadAsync(CancellationToken.None);
        if (reminderName != AutoCloseReminder)
            return;
        // Ticks can be late, early, missed or repeated: act only on the stored state and due time.
        var now = time.GetUtcNow();
        if (_record is { Status: TicketStatus.Resolved } && !TicketRules.ReopenWindowPassed(_record, now, options.Value.ReopenWindow))
            return;
        if (_record is { Status: TicketStatus.Resolved })
            await CloseAsync(Audit.System, now, CancellationToken.None);
        // Resolved → closed, or no longer resolved at all: either way the reminder has done its work.
        if (await this.GetReminder(AutoCloseReminder) is { } reminder)
            await this.UnregisterReminder(reminder);
    }

    private async Task CloseAsync(string actor, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var current = Existing();
        var next = current.Copy();
        TicketRules.ApplyStatus(next, TicketStatus.Closed, now);
        next.UpdatedAt = now;
        var writes = new WriteSet();
        AuditDiff(current, next, "auto-closed", actor, now, writes);
        await CommitAsync(next, writes, cancellationToken);
    }

    private void AuditDiff(TicketRecord before, TicketRecord after, string action, string actor, DateTimeOffset now, WriteSet writes)
    {
        foreach (var change in TicketRules.Diff(before, after))
            writes.Insert(Audit.Ticket(Number, action, actor, now, change.Field, change.OldValue, change.NewValue));
    }

    /// <summary>Commits the new row with the set's other writes, then swaps it in and keeps the auto-close reminder in step.
    /// The reminder is registered before a commit that resolves the ticket, so a crash right after the commit still
    /// closes it; a reminder left by a commit that failed finds the ticket not resolved on its tick and removes itself.
    /// It is removed after a commit that leaves the resolved state, where a failure is harmless for the same reason.</summary>
    private async Task CommitAsync(TicketRecord next, WriteSet writes, CancellationToken cancellationToken)
    {
        var wasResolved = _record?.Status == TicketStatus.Resolved;
        var resolves = next is { Status: TicketStatus.Resolved, MergedInto: null, ResolvedAt: not null } && !wasResolved;
        if (resolves)
        {
            var due = next.ResolvedAt!.Value + options.Value.ReopenWindow - time.GetUtcNow();
            await this.RegisterOrUpdateReminder(AutoCloseReminder, due < TimeSpan.Zero ? TimeSpan.Zero : due, options.Value.ReminderPeriod);
        }
        // LastCustomerMessageAt is also written with inbound messages, past this activation: write it only when this
        // turn set it, so a full-row update never takes a newer value back.
        var ownsActivity = next.LastCustomerMessageAt != _record?.LastCustomerMessageAt;
        await store.CommitAsync(writes.Update(next.Copy(), ownsActivity ? [] : ColumnsButCustomerActivity), cancellationToken);
        Committed(next);
        if (wasResolved && next.Status != TicketStatus.Resolved)
        {
            try
            {
                if (await this.GetReminder(AutoCloseReminder) is { } reminder)
                    await this.UnregisterReminder(reminder);
            }
            catch (Exception ex)
            {
                // The change is committed; the reminder's next tick finds the ticket not resolved and removes itself.
                logger.LogWarning(ex, "Ticket #{Number}: the auto-close reminder could not be removed now; its next tick removes it", Number);
            }
        }
    }

    private TicketRecord Existing() =>
        _record ?? throw new DomainException(DomainErrorKind.NotFound, $"No ticket #{Number}.", "number");
}
