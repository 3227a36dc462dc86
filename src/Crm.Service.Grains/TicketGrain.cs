using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Microsoft.Extensions.Options;

namespace Crm.Service.Grains;

/// <summary>
/// A ticket: the single writer of its row, its audit history, its notes and its agents' replies.
/// A resolved ticket closes by a durable reminder once the reopen window has passed.
/// </summary>
public sealed class TicketGrain(
    ICrmStore store,
    ITicketNumberAllocator ticketNumbers,
    IOutboxSignal outbox,
    IOptions<TicketOptions> options,
    TimeProvider time) : Grain, ITicketGrain, IRemindable
{
    internal const string AutoCloseReminder = "auto-close";

    private TicketRecord? _record;
    private bool _loaded;

    private long Number => this.GetPrimaryKeyLong();

    // The row is loaded by the first call that needs it, not on activation: a ticket is usually activated by
    // OpenAsync under a freshly allocated number, where a read would only confirm that nothing is there.
    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        if (_loaded)
            return;
        _record = await store.FindTicketAsync(Number, cancellationToken);
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
        {
            // A retried open (after a crash or a lost answer) is harmless; anything else is a bug in the caller.
            if (_record.ConversationIds.Contains(opening.ConversationId) && opening.SplitMessageId is null)
                return _record.ToSnapshot();
            throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} already exists.", "number");
        }
        var now = time.GetUtcNow();
        var record = new TicketRecord
        {
            Number = Number,
            Subject = opening.Subject,
            Status = TicketStatus.New,
            Priority = TicketPriority.Normal,
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
            writes.Insert(Audit.Ticket(Number, "follow-up", opening.Actor, now, "followUpOf", null, Format(previous)));
        if (opening.SplitMessageId is { } messageId)
        {
            writes.Add(new MoveMessage(messageId, Number));
            writes.Insert(Audit.Ticket(Number, "split", opening.Actor, now, "splitFrom", Format(opening.SplitFrom), messageId.ToString()));
        }
        try
        {
            await store.CommitAsync(writes, cancellationToken);
        }
        catch (DuplicateKeyException) when (!_loaded)
        {
            // Opened before this activation (a retried open after a lost answer): answer from the stored row.
            await LoadAsync(cancellationToken);
            if (_record is not null && _record.ConversationIds.Contains(opening.ConversationId) && opening.SplitMessageId is null)
                return _record.ToSnapshot();
            throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} already exists.", "number");
        }
        _record = record;
        _loaded = true;
        return record.ToSnapshot();
    }

    public async Task<InboundRouting> OnInboundMessageAsync(InboundNotice notice, CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        if (_record is null)
            return new InboundRouting(InboundRoutingKind.Missing, Number);
        if (_record.MergedInto is { } target)
            return new InboundRouting(InboundRoutingKind.MergedInto, target);

        var now = time.GetUtcNow();
        var before = _record.Status;
        var writes = new WriteSet();
        switch (_record.Status)
        {
            case TicketStatus.Closed:
                return new InboundRouting(InboundRoutingKind.NeedsFollowUp, Number);
            case TicketStatus.Resolved when _record.ResolvedAt is { } resolvedAt && now - resolvedAt > options.Value.ReopenWindow:
                // The auto-close reminder has not ticked yet; close now so the ticket's state matches the rule.
                await CloseAsync(Audit.System, now, cancellationToken);
                await SyncAutoCloseReminderAsync(before);
                return new InboundRouting(InboundRoutingKind.NeedsFollowUp, Number);
            case TicketStatus.Resolved or TicketStatus.Pending or TicketStatus.OnHold:
                // The customer wrote again: the ticket needs an agent.
                ChangeStatus(TicketStatus.Open, Audit.System, now, writes, "customer-replied");
                break;
        }
        var joined = !_record.ConversationIds.Contains(notice.ConversationId);
        if (joined)
            _record.ConversationIds.Add(notice.ConversationId);
        _record.LastCustomerMessageAt = now;
        _record.UpdatedAt = now;
        if (writes.IsEmpty && !joined)
        {
            // Only the activity time changed: the conversation stores it with the message (see InboundRouting.ActivityAt).
            return new InboundRouting(InboundRoutingKind.Accepted, Number, now);
        }
        await store.CommitAsync(writes.Update(_record.Copy()), cancellationToken);
        await SyncAutoCloseReminderAsync(before);
        return new InboundRouting(InboundRoutingKind.Accepted, Number);
    }

    public async Task<MessageSnapshot> ReplyAsync(AgentReply reply, CancellationToken cancellationToken = default)
    {
        InputLimits.CheckReply(reply);
        await LoadAsync(cancellationToken);
        var record = Existing();
        if (record.MergedInto is { } target)
            throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} was merged into #{target}; reply there.", "number");
        if (record.Status == TicketStatus.Closed)
            throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} is closed; the customer's next message opens a follow-up.", "status");
        if (string.IsNullOrWhiteSpace(reply.Text))
            throw new DomainException(DomainErrorKind.Invalid, "A reply needs text.", "text");

        var idempotencyKey = reply.RequestId is null ? null : $"{Number}:{reply.RequestId}";
        if (idempotencyKey is not null && await store.FindMessageByIdempotencyKeyAsync(idempotencyKey, cancellationToken) is { } earlier)
            return earlier.ToSnapshot();

        var conversationId = reply.ConversationId ?? record.ConversationIds.LastOrDefault();
        var conversation = conversationId == Guid.Empty ? null : await store.FindConversationAsync(conversationId, cancellationToken);
        if (conversation is null || !record.ConversationIds.Contains(conversation.Id))
            throw new DomainException(DomainErrorKind.Invalid, $"Ticket #{Number} has no conversation {conversationId} to reply on.", "conversationId");

        var now = time.GetUtcNow();
        var message = new MessageRecord
        {
            Id = Guid.CreateVersion7(now),
            ConversationId = conversation.Id,
            TicketNumber = Number,
            Direction = MessageDirection.Outbound,
            ChannelAccountId = conversation.ChannelAccountId,
            IdempotencyKey = idempotencyKey,
            Author = reply.Actor,
            Text = reply.Text,
            Html = reply.Html,
            CreatedAt = now,
            Delivery = DeliveryStatus.Queued,
        };
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
        var before = record.Status;
        var newStatus = reply.SetStatus ?? (record.Status == TicketStatus.New ? TicketStatus.Open : record.Status);
        ChangeStatus(newStatus, reply.Actor, now, writes);
        record.FirstResponseAt ??= now;
        record.UpdatedAt = now;
        writes.Update(record.Copy());
        try
        {
            await store.CommitAsync(writes, cancellationToken);
        }
        catch (DuplicateKeyException) when (idempotencyKey is not null)
        {
            _record = await store.FindTicketAsync(Number, cancellationToken);
            return (await store.FindMessageByIdempotencyKeyAsync(idempotencyKey, cancellationToken))!.ToSnapshot();
        }
        outbox.Notify();
        await SyncAutoCloseReminderAsync(before);
        return message.ToSnapshot();
    }

    public async Task<MessageSnapshot> AddNoteAsync(string actor, string text, CancellationToken cancellationToken = default)
    {
        InputLimits.CheckNote(text);
        await LoadAsync(cancellationToken);
        var record = Existing();
        if (string.IsNullOrWhiteSpace(text))
            throw new DomainException(DomainErrorKind.Invalid, "A note needs text.", "text");
        var now = time.GetUtcNow();
        var note = new MessageRecord
        {
            Id = Guid.CreateVersion7(now),
            TicketNumber = Number,
            Direction = MessageDirection.Note,
            Author = actor,
            Text = text,
            CreatedAt = now,
        };
        record.UpdatedAt = now;
        await store.CommitAsync(new WriteSet().Insert(note.Copy()).Update(record.Copy()), cancellationToken);
        return note.ToSnapshot();
    }

    public async Task<TicketSnapshot> ChangeAsync(TicketChange change, string actor, CancellationToken cancellationToken = default)
    {
        InputLimits.CheckTicketChange(change);
        await LoadAsync(cancellationToken);
        var record = Existing();
        if (record.MergedInto is { } target)
            throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} was merged into #{target}.", "number");
        var now = time.GetUtcNow();
        var before = record.Status;
        var writes = new WriteSet();
        if (change.Status is { } status && status != record.Status)
        {
            if (record.Status == TicketStatus.Closed)
                throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} is closed and cannot change status; the customer's next message opens a follow-up.", "status");
            ChangeStatus(status, actor, now, writes);
        }
        if (change.Priority is { } priority && priority != record.Priority)
        {
            writes.Insert(Audit.Ticket(Number, "changed", actor, now, "priority", record.Priority.ToString(), priority.ToString()));
            record.Priority = priority;
        }
        if (change.Subject is { } subject && subject.Trim() != record.Subject)
        {
            var cleaned = TextRules.SubjectFor(subject, null);
            writes.Insert(Audit.Ticket(Number, "changed", actor, now, "subject", record.Subject, cleaned));
            record.Subject = cleaned;
        }
        if (change.Assignee is { } assignee && NullIfEmpty(assignee) != record.Assignee)
        {
            writes.Insert(Audit.Ticket(Number, "changed", actor, now, "assignee", record.Assignee, NullIfEmpty(assignee)));
            record.Assignee = NullIfEmpty(assignee);
        }
        if (change.Team is { } team && NullIfEmpty(team) != record.Team)
        {
            writes.Insert(Audit.Ticket(Number, "changed", actor, now, "team", record.Team, NullIfEmpty(team)));
            record.Team = NullIfEmpty(team);
        }
        if (change.Tags is { } tags)
        {
            var normalized = TextRules.NormalizeTags(tags);
            if (!normalized.SequenceEqual(record.Tags))
            {
                writes.Insert(Audit.Ticket(Number, "changed", actor, now, "tags", string.Join(",", record.Tags), string.Join(",", normalized)));
                record.Tags = normalized;
            }
        }
        if (!writes.IsEmpty)
        {
            record.UpdatedAt = now;
            await store.CommitAsync(writes.Update(record.Copy()), cancellationToken);
            await SyncAutoCloseReminderAsync(before);
        }
        return record.ToSnapshot();
    }

    public async Task<TicketSnapshot> MergeIntoAsync(long targetNumber, string actor, CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        var record = Existing();
        if (targetNumber == Number)
            throw new DomainException(DomainErrorKind.Invalid, "A ticket cannot be merged into itself.", "into");
        if (record.MergedInto is { } existing)
        {
            if (existing != targetNumber)
                throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{Number} was already merged into #{existing}.", "into");
        }
        else
        {
            var target = await GrainFactory.GetGrain<ITicketGrain>(targetNumber).GetAsync()
                ?? throw new DomainException(DomainErrorKind.NotFound, $"No ticket #{targetNumber}.", "into");
            if (target.MergedInto is not null)
                throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{targetNumber} was itself merged into #{target.MergedInto}; merge into that one.", "into");
            if (target.CustomerId != record.CustomerId)
                throw new DomainException(DomainErrorKind.Conflict, $"Ticket #{targetNumber} belongs to another customer; merge the customers first.", "into");

            var now = time.GetUtcNow();
            var before = record.Status;
            // History moves first, then this ticket's last entries are written: they stay here to explain where it went.
            var writes = new WriteSet().Add(new MoveTicketContent(Number, targetNumber));
            if (record.Status != TicketStatus.Closed)
            {
                writes.Insert(Audit.Ticket(Number, "changed", actor, now, "status", record.Status.ToString(), nameof(TicketStatus.Closed)));
                record.Status = TicketStatus.Closed;
                record.ClosedAt = now;
            }
            writes.Insert(Audit.Ticket(Number, "merged", actor, now, "mergedInto", null, Format(targetNumber)));
            record.MergedInto = targetNumber;
            record.UpdatedAt = now;
            await store.CommitAsync(writes.Update(record.Copy()), cancellationToken);
            await SyncAutoCloseReminderAsync(before);
        }
        await GrainFactory.GetGrain<ITicketGrain>(targetNumber).AbsorbAsync(Number, record.ConversationIds, actor, cancellationToken);
        return record.ToSnapshot();
    }

    public async Task AbsorbAsync(long sourceNumber, IReadOnlyList<Guid> conversationIds, string actor, CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        var record = Existing();
        var now = time.GetUtcNow();
        foreach (var id in conversationIds.Where(id => !record.ConversationIds.Contains(id)))
            record.ConversationIds.Add(id);
        record.UpdatedAt = now;
        await store.CommitAsync(new WriteSet()
            .Update(record.Copy())
            .Insert(Audit.Ticket(Number, "merged-in", actor, now, "mergedFrom", null, Format(sourceNumber))), cancellationToken);
    }

    public async Task<TicketSnapshot> SplitAsync(Guid messageId, string actor, CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        var record = Existing();
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
            CustomerId = record.CustomerId,
            ConversationId = conversationId,
            ConversationKey = conversation.Key,
            Actor = actor,
            SplitMessageId = messageId,
            SplitFrom = Number,
        }, cancellationToken);
        var now = time.GetUtcNow();
        record.UpdatedAt = now;
        await store.CommitAsync(new WriteSet()
            .Update(record.Copy())
            .Insert(Audit.Ticket(Number, "split", actor, now, "splitInto", messageId.ToString(), Format(number))), cancellationToken);
        return created;
    }

    public async Task ChangeCustomerAsync(Guid customerId, string actor, CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        var record = Existing();
        if (record.CustomerId == customerId)
            return;
        var now = time.GetUtcNow();
        var writes = new WriteSet().Insert(Audit.Ticket(Number, "changed", actor, now, "customer", record.CustomerId.ToString(), customerId.ToString()));
        record.CustomerId = customerId;
        record.UpdatedAt = now;
        await store.CommitAsync(writes.Update(record.Copy()), cancellationToken);
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        await LoadAsync(CancellationToken.None);
        if (reminderName != AutoCloseReminder)
            return;
        // Ticks can be late, early, missed or repeated: act only on the stored state and due time.
        var now = time.GetUtcNow();
        if (_record is { Status: TicketStatus.Resolved, ResolvedAt: { } resolvedAt } && now - resolvedAt < options.Value.ReopenWindow)
            return;
        if (_record is { Status: TicketStatus.Resolved })
            await CloseAsync(Audit.System, now, CancellationToken.None);
        // Resolved → closed, or no longer resolved at all: either way the reminder has done its work.
        if (await this.GetReminder(AutoCloseReminder) is { } reminder)
            await this.UnregisterReminder(reminder);
    }

    private async Task CloseAsync(string actor, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var record = Existing();
        var writes = new WriteSet();
        ChangeStatus(TicketStatus.Closed, actor, now, writes, "auto-closed");
        record.UpdatedAt = now;
        await store.CommitAsync(writes.Update(record.Copy()), cancellationToken);
    }

    private void ChangeStatus(TicketStatus status, string actor, DateTimeOffset now, WriteSet writes, string action = "changed")
    {
        var record = Existing();
        if (status == record.Status)
            return;
        writes.Insert(Audit.Ticket(Number, action, actor, now, "status", record.Status.ToString(), status.ToString()));
        record.Status = status;
        record.ResolvedAt = status == TicketStatus.Resolved ? now : status == TicketStatus.Closed ? record.ResolvedAt : null;
        record.ClosedAt = status == TicketStatus.Closed ? now : null;
    }

    /// <summary>Keeps exactly one auto-close reminder while the ticket is resolved, none otherwise.
    /// Touches the reminder table only when the ticket enters or leaves the resolved state.</summary>
    private async Task SyncAutoCloseReminderAsync(TicketStatus before)
    {
        if (before != TicketStatus.Resolved && _record?.Status != TicketStatus.Resolved)
            return;
        var wanted = _record is { Status: TicketStatus.Resolved, MergedInto: null };
        var existing = await this.GetReminder(AutoCloseReminder);
        if (wanted && existing is null)
        {
            var due = _record!.ResolvedAt!.Value + options.Value.ReopenWindow - time.GetUtcNow();
            await this.RegisterOrUpdateReminder(AutoCloseReminder, due < TimeSpan.Zero ? TimeSpan.Zero : due, options.Value.ReminderPeriod);
        }
        else if (!wanted && existing is not null)
        {
            await this.UnregisterReminder(existing);
        }
    }

    private TicketRecord Existing() =>
        _record ?? throw new DomainException(DomainErrorKind.NotFound, $"No ticket #{Number}.", "number");

    private static string? NullIfEmpty(string value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static string? Format(long? number) => number?.ToString(CultureInfo.InvariantCulture);
}
