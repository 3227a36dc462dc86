using System.Globalization;
using Crm.Service.Grains.Records;

namespace Crm.Service.Grains;

/// <summary>Builds audit rows: every change to a ticket or customer is recorded with actor and time.</summary>
internal static class Audit
{
    public const string System = "system";

    public static AuditRecord Ticket(long number, string action, string actor, DateTimeOffset at,
        string? field = null, string? oldValue = null, string? newValue = null) =>
        Entry("ticket", number.ToString(CultureInfo.InvariantCulture), action, actor, at, field, oldValue, newValue);

    public static AuditRecord Customer(Guid id, string action, string actor, DateTimeOffset at,
        string? field = null, string? oldValue = null, string? newValue = null) =>
        Entry("customer", id.ToString(), action, actor, at, field, oldValue, newValue);

    private static AuditRecord Entry(string type, string id, string action, string actor, DateTimeOffset at,
        string? field, string? oldValue, string? newValue) => new()
        {
            Id = Guid.CreateVersion7(at),
            EntityType = type,
            EntityId = id,
            Action = action,
            Actor = actor,
            At = at,
            Field = field,
            OldValue = oldValue,
            NewValue = newValue,
        };
}
