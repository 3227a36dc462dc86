using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Store;

/// <summary>Turns a <see cref="WriteSet"/> into EF Core changes. Row operations are tracked and saved with the batch;
/// a bulk operation first saves what is tracked, so the set's operations take effect in their order.</summary>
internal static class WriteSetApplier
{
    /// <param name="tickets">What the transaction knows of tickets' merges (<see cref="TicketMerges"/>), shared by its write sets.</param>
    /// <param name="changes">Collects the set's change rows; the caller inserts them in the same transaction (<see cref="ChangeRows.InsertAsync"/>).</param>
    /// <param name="touched">Collects the tickets whose queue projections (<see cref="Queries.TicketProjections"/>) must be rebuilt after the save.</param>
    public static async Task ApplyAsync(CrmDbContext db, WriteSet writes, TicketMerges tickets, DateTimeOffset committedAt, List<ChangeRecord> changes,
        Queries.ProjectionTouches? touched = null)
    {
        ChangeRows.Append(writes, committedAt, changes);
        touched ??= new Queries.ProjectionTouches();
        foreach (var operation in writes.Operations)
        {
            switch (operation)
            {
                case InsertRow insert:
                    db.Add(insert.Record);
                    if (insert.Record is TicketRecord inserted)
                        touched.Add(inserted.Number);
                    else if (insert.Record is MessageRecord { ChannelAccountId: { } channel } message)
                    {
                        touched.Add(message.TicketNumber);
                        touched.Channels.Add((message.TicketNumber, channel));
                    }
                    break;
                case UpdateRow update:
                    if (update.Properties.Count == 0)
                        db.Update(update.Record);
                    else
                    {
                        var entry = db.Attach(update.Record);
                        foreach (var property in update.Properties)
                            entry.Property(property).IsModified = true;
                    }
                    if (update.Record is TicketRecord updated && (update.Properties.Count == 0
                        || update.Properties.Contains(nameof(TicketRecord.Tags)) || update.Properties.Contains(nameof(TicketRecord.UpdatedAt))))
                        touched.Add(updated.Number);
                    // Only a row that carries MergedInto says where a ticket went (a conversation's activity update does not).
                    if (update.Record is TicketRecord ticket && (update.Properties.Count == 0 || update.Properties.Contains(nameof(TicketRecord.MergedInto))))
                        tickets.Written(ticket);
                    break;
                case RequireTicketNotMerged required:
                    if (await tickets.MergedIntoAsync(db, required.Number) is { } target)
                        throw new StaleWriteException($"Ticket #{required.Number} was merged into #{target} before this write committed.");
                    break;
                default:
                    // Tracked rows go first (and are accepted, so the batch's final save does not insert them again).
                    await db.SaveChangesAsync(acceptAllChangesOnSuccess: true);
                    await ApplyBulkAsync(db, operation, touched);
                    if (operation is MoveTicketContent move)
                        tickets.Merged(move.FromTicket, move.ToTicket);
                    break;
            }
        }
    }

    private static async Task ApplyBulkAsync(CrmDbContext db, WriteOperation operation, Queries.ProjectionTouches touched)
    {
        switch (operation)
        {
            case MoveTicketContent content:
                touched.RebuildTicket(content.FromTicket);
                touched.RebuildTicket(content.ToTicket);
                break;
            case WithdrawEmptyTicket withdrawn:
                touched.RebuildTicket(withdrawn.Number);
                if (withdrawn.RestorePointerTo is { } restored)
                    touched.RebuildTicket(restored);
                break;
            case MoveMessage moved:
                touched.RebuildTicket(moved.ToTicket);
                if (await db.Messages.Where(m => m.Id == moved.MessageId).Select(m => (long?)m.TicketNumber).FirstOrDefaultAsync() is { } source)
                    touched.RebuildTicket(source);
                break;
        }
        switch (operation)
        {
            case MoveTicketContent move:
                // The target may have been withdrawn (deleted as empty) since the merging ticket looked at it.
                if (!await db.Tickets.AnyAsync(t => t.Number == move.ToTicket))
                    throw new StaleWriteException($"Ticket #{move.ToTicket} no longer exists; nothing was merged into it.");
                var from = move.FromTicket.ToString(CultureInfo.InvariantCulture);
                var to = move.ToTicket.ToString(CultureInfo.InvariantCulture);
                await db.Messages.Where(m => m.TicketNumber == move.FromTicket)
                    .ExecuteUpdateAsync(s => s.SetProperty(m => m.TicketNumber, move.ToTicket));
                await db.Conversations.Where(c => c.TicketNumber == move.FromTicket)
                    .ExecuteUpdateAsync(s => s.SetProperty(c => c.TicketNumber, move.ToTicket));
                await db.Audit.Where(a => a.EntityType == "ticket" && a.EntityId == from)
                    .ExecuteUpdateAsync(s => s.SetProperty(a => a.EntityId, to));
                break;
            case WithdrawEmptyTicket withdraw:
                // Anything that reached the ticket since it was opened (a message, a merged-in ticket's conversations)
                // keeps it.
                var deletesConversation = withdraw.RestorePointerTo is null;
                if (await db.Messages.AnyAsync(m => m.TicketNumber == withdraw.Number || (deletesConversation && m.ConversationId == withdraw.ConversationId))
                    || await db.Conversations.AnyAsync(c => c.TicketNumber == withdraw.Number && c.Id != withdraw.ConversationId))
                    throw new StaleWriteException($"Ticket #{withdraw.Number} holds messages or conversations; it is not withdrawn.");
                var number = withdraw.Number.ToString(CultureInfo.InvariantCulture);
                await db.Audit.Where(a => a.EntityType == "ticket" && a.EntityId == number).ExecuteDeleteAsync();
                await db.Tickets.Where(t => t.Number == withdraw.Number).ExecuteDeleteAsync();
                if (withdraw.RestorePointerTo is { } previous)
                    await db.Conversations.Where(c => c.Id == withdraw.ConversationId && c.TicketNumber == withdraw.Number)
                        .ExecuteUpdateAsync(s => s.SetProperty(c => c.TicketNumber, previous));
                else
                    await db.Conversations.Where(c => c.Id == withdraw.ConversationId).ExecuteDeleteAsync();
                break;
            case MoveMessage move:
                await db.Messages.Where(m => m.Id == move.MessageId)
                    .ExecuteUpdateAsync(s => s.SetProperty(m => m.TicketNumber, move.ToTicket));
                break;
            case MoveCustomerConversations move:
                await db.Conversations.Where(c => c.CustomerId == move.FromCustomer)
                    .ExecuteUpdateAsync(s => s.SetProperty(c => c.CustomerId, move.ToCustomer));
                // The source's documents, events and logged calls go along in the same commit, so the target's 360 page
                // lists them (reviews CT10, CS3).
                await MergedCustomerContent.MoveAsync(db, move.FromCustomer, move.ToCustomer);
                break;
            case SetDelivery delivery:
                var sentAt = delivery.Status == DeliveryStatus.Sent ? delivery.At : (DateTimeOffset?)null;
                await db.Messages.Where(m => m.Id == delivery.MessageId)
                    .ExecuteUpdateAsync(s => s
                        .SetProperty(m => m.Delivery, delivery.Status)
                        .SetProperty(m => m.DeliveryError, delivery.Error)
                        .SetProperty(m => m.SentAt, m => sentAt ?? m.SentAt)
                        .SetProperty(m => m.OutboundExternalId, m => delivery.ExternalId ?? m.OutboundExternalId));
                break;
            default:
                throw new NotSupportedException($"Unknown write operation {operation.GetType().Name}.");
        }
    }
}

/// <summary>
/// Where tickets were merged, as of the current point of one transaction, for the <see cref="RequireTicketNotMerged"/>
/// checks of its write sets: the merged ones among all the numbers the batch checks, read once before the batch
/// (one query, instead of one per customer message), then every merge the batch applies (a ticket content move, a
/// ticket row written with its MergedInto column). The partial activity updates of conversations carry no MergedInto.
/// </summary>
internal sealed class TicketMerges
{
    private readonly Dictionary<long, long?> _known = [];

    // Compiled: this runs once per group commit on the hot path, and EF's query cache lookup costs more than the query.
    private static readonly Func<CrmDbContext, long[], IAsyncEnumerable<TicketRecord>> MergedAmong = EF.CompileAsyncQuery(
        (CrmDbContext db, long[] numbers) => db.Tickets.AsNoTracking().Where(t => numbers.Contains(t.Number) && t.MergedInto != null));

    public static async Task<TicketMerges> ReadAsync(CrmDbContext db, IEnumerable<WriteSet> batch)
    {
        var merges = new TicketMerges();
        var numbers = batch.SelectMany(w => w.Operations).OfType<RequireTicketNotMerged>().Select(r => r.Number).Distinct().ToArray();
        if (numbers.Length == 0)
            return merges;
        foreach (var number in numbers)
            merges._known[number] = null;
        await foreach (var ticket in MergedAmong(db, numbers))
            merges._known[ticket.Number] = ticket.MergedInto;
        return merges;
    }

    public void Written(TicketRecord ticket) => _known[ticket.Number] = ticket.MergedInto;

    public void Merged(long from, long to) => _known[from] = to;

    /// <summary>What is known now, to go back to when a write set is rolled back to its savepoint.</summary>
    public Dictionary<long, long?> Snapshot() => new(_known);

    public void Restore(Dictionary<long, long?> snapshot)
    {
        _known.Clear();
        foreach (var (number, target) in snapshot)
            _known[number] = target;
    }

    public async Task<long?> MergedIntoAsync(CrmDbContext db, long number) =>
        _known.TryGetValue(number, out var known)
            ? known
            : await db.Tickets.AsNoTracking().Where(t => t.Number == number).Select(t => t.MergedInto).FirstOrDefaultAsync();
}
