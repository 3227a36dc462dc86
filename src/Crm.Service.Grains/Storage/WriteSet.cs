using Crm.Service.Contracts;

namespace Crm.Service.Grains.Storage;

/// <summary>
/// The rows one grain turn changes, committed together in one transaction (and, by the store's group
/// commit, together with other grains' write sets). Records added here must be copies.
/// </summary>
public sealed class WriteSet
{
    private readonly List<WriteOperation> _operations = [];

    public IReadOnlyList<WriteOperation> Operations => _operations;

    public bool IsEmpty => _operations.Count == 0;

    public WriteSet Insert(object record)
    {
        _operations.Add(new InsertRow(record));
        return this;
    }

    /// <summary>Updates the row; with <paramref name="properties"/>, only those columns (the ones this writer owns).</summary>
    public WriteSet Update(object record, params string[] properties)
    {
        _operations.Add(new UpdateRow(record, properties));
        return this;
    }

    public WriteSet Add(WriteOperation operation)
    {
        _operations.Add(operation);
        return this;
    }
}

public abstract record WriteOperation;

public sealed record InsertRow(object Record) : WriteOperation;

public sealed record UpdateRow(object Record, IReadOnlyList<string> Properties) : WriteOperation;

/// <summary>
/// A precondition, checked inside the commit's transaction: the set is refused whole (<see cref="StaleWriteException"/>)
/// when the ticket has been merged away. A conversation commits a customer's message after the ticket accepted it; a
/// merge committed in between would otherwise leave the message on the closed source ticket, which nobody works.
/// </summary>
public sealed record RequireTicketNotMerged(long Number) : WriteOperation;

/// <summary>
/// Deletes a ticket that holds nothing (no message, no other conversation, only its own audit rows), checked inside the
/// commit's transaction: otherwise the set is refused whole (<see cref="StaleWriteException"/>). The conversation that
/// opened it is deleted too, or, when it existed before (<paramref name="RestorePointerTo"/>), points back at its
/// previous ticket.
/// </summary>
public sealed record WithdrawEmptyTicket(long Number, Guid ConversationId, long? RestorePointerTo) : WriteOperation;

/// <summary>Moves a ticket's messages, conversations and audit history to another ticket (merge).</summary>
public sealed record MoveTicketContent(long FromTicket, long ToTicket) : WriteOperation;

/// <summary>Moves one message to another ticket (split).</summary>
public sealed record MoveMessage(Guid MessageId, long ToTicket) : WriteOperation;

/// <summary>Moves a customer's conversations to another customer (customer merge).</summary>
public sealed record MoveCustomerConversations(Guid FromCustomer, Guid ToCustomer) : WriteOperation;

public sealed record SetDelivery(Guid MessageId, DeliveryStatus Status, string? Error, string? ExternalId, DateTimeOffset At) : WriteOperation;
