using System.Text.Json;
using System.Text.Json.Serialization;
using Crm.Service.Contracts;

namespace Crm.Service.Grains.Sla;

/// <summary>
/// Routing and SLA settings and state, as JSON documents by kind and id (table RoutingDocuments): calendars, SLA
/// policies, routing rules, and each ticket's SLA clocks. A put returns once the document is durably stored.
/// </summary>
public interface IRoutingStore
{
    Task<string?> GetAsync(string kind, string id, CancellationToken cancellationToken = default);
    Task<IReadOnlyList<string>> ListAsync(string kind, CancellationToken cancellationToken = default);
    Task PutAsync(string kind, string id, string json, CancellationToken cancellationToken = default);
    Task<bool> DeleteAsync(string kind, string id, CancellationToken cancellationToken = default);

    /// <summary>The text of the ticket's first customer message (at most <see cref="MaxConditionText"/> characters),
    /// which keyword conditions search; null while none is stored.</summary>
    Task<string?> FirstCustomerTextAsync(long ticketNumber, CancellationToken cancellationToken = default);

    public const int MaxConditionText = 20_000;

    /// <summary>One keyset page of a customer's follow-up log (kind <c>customer-follow-up</c>), newest contact first:
    /// the entries after (<paramref name="afterAt"/>, <paramref name="afterId"/>) in (at desc, id desc) order, at most
    /// <paramref name="take"/>; only those whose next follow-up is still open when <paramref name="openOnly"/>.</summary>
    Task<IReadOnlyList<string>> CustomerFollowUpsAsync(Guid customer, bool openOnly, string? afterAt, string? afterId, int take,
        CancellationToken cancellationToken = default);

    /// <summary>One keyset page of open follow-ups due by <paramref name="by"/>, earliest first, for an owner (the entry's
    /// owner, else its author; or, given <paramref name="ownerId"/>, an entry whose owner resolved to that console account;
    /// or, given <paramref name="ownerNames"/>, an entry whose owner is one of those names, lower-cased)
    /// and/or team (both case-insensitive), after (<paramref name="afterDue"/>, <paramref name="afterId"/>). An entry named
    /// in another's <see cref="CustomerFollowUp.Closes"/> is done, whatever its own document says.</summary>
    Task<IReadOnlyList<string>> DueFollowUpsAsync(DateTimeOffset by, string? owner, string? team, string? afterDue, string? afterId, int take,
        CancellationToken cancellationToken = default, string? ownerId = null, IReadOnlyCollection<string>? ownerNames = null);

    /// <summary>The id of a follow-up of <paramref name="customer"/> whose <see cref="CustomerFollowUp.Closes"/> names
    /// <paramref name="entry"/>, if any; of several, the earliest recorded, then the smallest id, as the log reads it
    /// (review CX3). This default walks the customer's log; the SQLite store asks one query.</summary>
    async Task<Guid?> FollowUpClosedByAsync(Guid customer, Guid entry, CancellationToken cancellationToken = default)
    {
        CustomerFollowUp? first = null;
        for (string? afterAt = null, afterId = null; ;)
        {
            var page = (await CustomerFollowUpsAsync(customer, false, afterAt, afterId, 200, cancellationToken)).Select(RoutingJson.Read<CustomerFollowUp>).ToList();
            foreach (var closer in page.Where(f => f.Closes.Contains(entry)))
            {
                if (first is null || closer.RecordedAt < first.RecordedAt
                    || (closer.RecordedAt == first.RecordedAt && string.CompareOrdinal(closer.Id.ToString("N"), first.Id.ToString("N")) < 0))
                    first = closer;
            }
            if (page.Count < 200)
                return first?.Id;
            (afterAt, afterId) = (RoutingJson.Write(page[^1].At).Trim('"'), page[^1].Id.ToString("N"));
        }
    }
}

/// <summary>The document kinds of <see cref="IRoutingStore"/>.</summary>
public static class RoutingKinds
{
    public const string Calendar = "calendar";
    public const string SlaPolicy = "sla-policy";
    public const string RoutingRule = "routing-rule";
    public const string SlaClocks = "sla-clocks";
    public const string TeamQueue = "team-queue";
    public const string TeamAssignment = "team-assignment";
    /// <summary>Per ticket: the routing rule's decision and whether it is on the ticket.</summary>
    public const string TicketRouting = "ticket-routing";
    /// <summary>Per ticket: its "follow up at" (see TicketFollowUpGrain).</summary>
    public const string TicketFollowUp = "ticket-follow-up";
    /// <summary>Per ticket: the last SLA sync that failed for good and was skipped by the change consumer.</summary>
    public const string SlaFailure = "sla-failure";
}

/// <summary>One JSON shape for everything in <see cref="IRoutingStore"/> (enums by name, so a reordered enum breaks nothing).</summary>
public static class RoutingJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static string Write<T>(T value) => JsonSerializer.Serialize(value, Options);

    public static T Read<T>(string json) => JsonSerializer.Deserialize<T>(json, Options)
        ?? throw new InvalidOperationException($"A stored {typeof(T).Name} is empty.");

    public static async Task<IReadOnlyList<SlaPolicy>> PoliciesAsync(this IRoutingStore store, CancellationToken cancellationToken) =>
        [.. (await store.ListAsync(RoutingKinds.SlaPolicy, cancellationToken)).Select(Read<SlaPolicy>).OrderBy(p => p.Order).ThenBy(p => p.Id, StringComparer.Ordinal)];

    public static async Task<IReadOnlyList<RoutingRule>> RoutingRulesAsync(this IRoutingStore store, CancellationToken cancellationToken) =>
        [.. Routing.RoutingRules.Ordered((await store.ListAsync(RoutingKinds.RoutingRule, cancellationToken)).Select(Read<RoutingRule>))];

    public static async Task<BusinessCalendar> CalendarAsync(this IRoutingStore store, string? id, CancellationToken cancellationToken)
    {
        if (id is null)
            return BusinessCalendar.AlwaysOpen;
        var json = await store.GetAsync(RoutingKinds.Calendar, id, cancellationToken);
        // A policy naming a deleted calendar counts round the clock rather than not at all.
        return json is null ? BusinessCalendar.AlwaysOpen : BusinessCalendar.From(Read<BusinessCalendarDefinition>(json));
    }
}

/// <summary>What an SLA clock tells people: a warning to the assignee, a breach to the assignee and supervisors.</summary>
[GenerateSerializer, Immutable, Alias("crm.SlaNotice")]
public sealed record SlaNotice(
    [property: Id(0)] long Ticket,
    [property: Id(1)] SlaMetric Metric,
    [property: Id(2)] string Milestone,
    [property: Id(3)] string? Assignee,
    [property: Id(4)] bool NotifyAssignee,
    [property: Id(5)] bool NotifySupervisors,
    [property: Id(6)] string? Cause = null);

/// <summary>Delivers SLA notices to people: the host stores them per person, idempotent per <see cref="SlaNotice.Cause"/>,
/// and pushes them to the agents' consoles. Called before the milestone is stored as fired, so a crash in between
/// repeats the call (which stores nothing twice) rather than losing the notice; a store failure fails the tick.</summary>
public interface ISlaNotifier
{
    Task NotifyAsync(SlaNotice notice, CancellationToken cancellationToken = default);
}
