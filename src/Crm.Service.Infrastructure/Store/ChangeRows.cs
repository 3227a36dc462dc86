using Microsoft.EntityFrameworkCore.Storage;
using System.Globalization;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Store;

/// <summary>
/// Derives the change feed's rows from a write set, so they are saved in the same transaction as the write set
/// itself (see docs/architecture.md, "Change feed"). Only rows a consumer cares about produce a change; audit,
/// attachments, raw sources and outbox rows do not. A write set yields at most one row per (entity, id, kind).
/// </summary>
internal static class ChangeRows
{
    private static readonly HashSet<string> HealthColumns =
        [nameof(ChannelAccountRecord.LastSuccessAt), nameof(ChannelAccountRecord.LastErrorAt), nameof(ChannelAccountRecord.LastError)];

    /// <summary>Adds the change rows of <paramref name="writes"/> to <paramref name="into"/>.</summary>
    public static void Append(WriteSet writes, DateTimeOffset at, List<ChangeRecord> into)
    {
        // Write sets are small (a handful of rows), so a list beats a hash set; many (outbox, audit) yield no row at all.
        List<ChangeRecord>? rows = null;
        foreach (var operation in writes.Operations)
        {
            switch (operation)
            {
                case InsertRow { Record: var record }:
                    if (Identify(record) is { } created)
                        Add(ref rows, created.Entity, created.Id, ChangeKinds.Created, at);
                    break;
                // A channel's health (last success, last error) is not a change of its configuration: no row, so the
                // account directory and the connectors following it are not woken every few seconds.
                case UpdateRow { Record: ChannelAccountRecord, Properties: var columns } when columns.Count > 0 && columns.All(HealthColumns.Contains):
                    break;
                case UpdateRow { Record: var record }:
                    if (Identify(record) is { } updated)
                        Add(ref rows, updated.Entity, updated.Id, ChangeKinds.Updated, at);
                    break;
                case MoveTicketContent move:
                    Add(ref rows, ChangeEntities.Ticket, Format(move.FromTicket), ChangeKinds.Merged, at);
                    Add(ref rows, ChangeEntities.Ticket, Format(move.ToTicket), ChangeKinds.Updated, at);
                    break;
                case WithdrawEmptyTicket withdraw:
                    Add(ref rows, ChangeEntities.Ticket, Format(withdraw.Number), ChangeKinds.Withdrawn, at);
                    Add(ref rows, ChangeEntities.Conversation, Format(withdraw.ConversationId),
                        withdraw.RestorePointerTo is null ? ChangeKinds.Withdrawn : ChangeKinds.Updated, at);
                    break;
                case MoveMessage move:
                    Add(ref rows, ChangeEntities.Message, Format(move.MessageId), ChangeKinds.Updated, at);
                    Add(ref rows, ChangeEntities.Ticket, Format(move.ToTicket), ChangeKinds.Updated, at);
                    break;
                case MoveCustomerConversations move:
                    Add(ref rows, ChangeEntities.Customer, Format(move.FromCustomer), ChangeKinds.Merged, at);
                    break;
                case SetDelivery delivery:
                    Add(ref rows, ChangeEntities.Message, Format(delivery.MessageId), ChangeKinds.Delivery, at);
                    break;
            }
        }
        if (rows is not null)
            into.AddRange(rows);
    }

    /// <summary>Inserts the collected rows in the context's current transaction with one prepared statement run per row
    /// on the context's connection (EF's tracking, or its raw-SQL pipeline and a statement text per batch size, cost
    /// more than the rows themselves), then clears the list.</summary>
    public static async Task InsertAsync(CrmDbContext db, List<ChangeRecord> rows)
    {
        if (rows.Count == 0)
            return;
        var connection = db.Database.GetDbConnection();
        await using var command = connection.CreateCommand();
        command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
        command.CommandText = "INSERT INTO \"Changes\" (\"Entity\", \"EntityId\", \"Kind\", \"At\") VALUES ($entity, $id, $kind, $at)";
        var entity = Parameter(command, "$entity");
        var id = Parameter(command, "$id");
        var kind = Parameter(command, "$kind");
        var at = Parameter(command, "$at");
        foreach (var row in rows)
        {
            entity.Value = row.Entity;
            id.Value = row.EntityId;
            kind.Value = row.Kind;
            at.Value = row.At.UtcTicks;
            await command.ExecuteNonQueryAsync();
        }
        rows.Clear();
    }

    private static System.Data.Common.DbParameter Parameter(System.Data.Common.DbCommand command, string name)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        command.Parameters.Add(parameter);
        return parameter;
    }

    /// <summary>The feed's entity and id of a stored row, or null for rows that are not in the feed.</summary>
    private static (string Entity, string Id)? Identify(object record) => record switch
    {
        TicketRecord ticket => (ChangeEntities.Ticket, Format(ticket.Number)),
        MessageRecord message => (ChangeEntities.Message, Format(message.Id)),
        ConversationRecord conversation => (ChangeEntities.Conversation, Format(conversation.Id)),
        CustomerRecord customer => (ChangeEntities.Customer, Format(customer.Id)),
        IdentityRecord identity => (ChangeEntities.Identity, identity.Key),
        ChannelAccountRecord channel => (ChangeEntities.ChannelAccount, channel.Id),
        _ => null,
    };

    private static string Format(long ticketNumber) => ticketNumber.ToString(CultureInfo.InvariantCulture);

    private static string Format(Guid id) => id.ToString("D");

    private static void Add(ref List<ChangeRecord>? rows, string entity, string id, string kind, DateTimeOffset at)
    {
        rows ??= new List<ChangeRecord>(capacity: 4);
        foreach (var row in rows)
        {
            if (row.EntityId == id && row.Kind == kind && row.Entity == entity)
                return;
        }
        rows.Add(new ChangeRecord { Entity = entity, EntityId = id, Kind = kind, At = at });
    }
}
