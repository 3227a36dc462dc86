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
    public static async Task ApplyAsync(CrmDbContext db, WriteSet writes, TicketMerges tickets, DateTimeOffset committedAt, List<ChangeRecord> changes)
    {
        ChangeRows.Append(writes, committedAt, changes);
        foreach (var operation in writes.Operations)
        {
            switch (operation)
            {
                case InsertRow insert:
                    db.Add(insert.Record);
                    break;
                case UpdateRow { Properties.Count: 0 } update:
                    db.Update(update.Record);
                    if (update.Record is TicketRecord ticket)
                        tickets.Written(ticket);
                    break;
                case UpdateRow update:
                    var entry = db.Attach(update.Record);
                    foreach (var property in update.Properties)
                        entry.Property(property).IsModified = true;
                    break;
                case RequireTicketNotMerged required:
                    if (await tickets.MergedIntoAsync(db, required.Number) is { } target)
                        throw new StaleWriteException($"Ticket #{required.Number} was merged into #{target} before this write committed.");
                    break;
                default:
                    // Tracked rows go first (and are accepted, so the batch's final save does not insert them again).
                    await db.SaveChangesAsync(acceptAllChangesOnSuccess: true);
                    await ApplyBulkAsync(db, operation);
                    break;
            }
        }
    }

    private static async Task ApplyBulkAsync(CrmDbContext db, WriteOperation operation)
    {
        switch (operation)
        {
            case MoveTicketContent move:
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
                if (await db.Messages.AnyAsync(m => m.TicketNumber == withdraw.Number
                        || (withdraw.ConversationId != null && m.ConversationId == withdraw.ConversationId)))
                    throw new StaleWriteException($"Ticket #{withdraw.Number} holds messages; it is not withdrawn.");
                var number = withdraw.Number.ToString(CultureInfo.InvariantCulture);
                await db.Audit.Where(a => a.EntityType == "ticket" && a.EntityId == number).ExecuteDeleteAsync();
                await db.Tickets.Where(t => t.Number == withdraw.Number).ExecuteDeleteAsync();
                if (withdraw.ConversationId is { } conversationId)
                    await db.Conversations.Where(c => c.Id == conversationId).ExecuteDeleteAsync();
                break;
            case MoveMessage move:
                await db.Messages.Where(m => m.Id == move.MessageId)
                    .ExecuteUpdateAsync(s => s.SetProperty(m => m.TicketNumber, move.ToTicket));
                break;
            case MoveCustomerConversations move:
                await db.Conversations.Where(c => c.CustomerId == move.FromCustomer)
                    .ExecuteUpdateAsync(s => s.SetProperty(c => c.CustomerId, move.ToCustomer));
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
/// (one query, instead of one per customer message), then every full ticket row the batch writes. Only full rows
/// carry MergedInto: the partial activity updates of conversations do not.
/// </summary>
internal sealed class TicketMerges
{
    private readonly Dictionary<long, long?> _known = [];

    public static async Task<TicketMerges> ReadAsync(CrmDbContext db, IEnumerable<WriteSet> batch)
    {
        var merges = new TicketMerges();
        var numbers = batch.SelectMany(w => w.Operations).OfType<RequireTicketNotMerged>().Select(r => r.Number).Distinct().ToList();
        if (numbers.Count == 0)
            return merges;
        var merged = await db.Tickets.AsNoTracking().Where(t => numbers.Contains(t.Number) && t.MergedInto != null)
            .Select(t => new { t.Number, t.MergedInto }).ToListAsync();
        foreach (var number in numbers)
            merges._known[number] = null;
        foreach (var ticket in merged)
            merges._known[ticket.Number] = ticket.MergedInto;
        return merges;
    }

    public void Written(TicketRecord ticket) => _known[ticket.Number] = ticket.MergedInto;

    public async Task<long?> MergedIntoAsync(CrmDbContext db, long number) =>
        _known.TryGetValue(number, out var known)
            ? known
            : await db.Tickets.AsNoTracking().Where(t => t.Number == number).Select(t => t.MergedInto).FirstOrDefaultAsync();
}
