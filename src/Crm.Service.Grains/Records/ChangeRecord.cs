using Crm.Service.Grains.Storage;

namespace Crm.Service.Grains.Records;

/// <summary>
/// One row of the durable change feed (table Changes), appended by the store in the same transaction as the write
/// set that caused it. Grains never write it; consumers read it as <see cref="Change"/>.
/// </summary>
public sealed class ChangeRecord
{
    /// <summary>Assigned by the database (AUTOINCREMENT, never reused even after pruning), in commit order.</summary>
    public long Sequence { get; set; }
    /// <summary>One of <see cref="ChangeEntities"/>.</summary>
    public required string Entity { get; set; }
    /// <summary>The entity's primary key as text: ticket number, message/conversation/customer id, identity key, channel id.</summary>
    public required string EntityId { get; set; }
    /// <summary>One of <see cref="ChangeKinds"/>.</summary>
    public required string Kind { get; set; }
    /// <summary>When the store committed the change.</summary>
    public DateTimeOffset At { get; set; }

    public Change ToChange() => new(Sequence, Entity, EntityId, Kind, At);
}
