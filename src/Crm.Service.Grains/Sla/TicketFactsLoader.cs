using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Grains.Sla;

/// <summary>Gathers what <see cref="TicketConditionMatcher"/> checks (channel, customer, first message, calendars) for
/// a set of conditions, reading only what those conditions need.</summary>
public static class TicketFactsLoader
{
    public static async Task<TicketFacts> LoadAsync(IGrainFactory grains, ICrmStore store, IRoutingStore settings,
        TicketSnapshot ticket, IReadOnlyCollection<TicketConditions> conditions, string? firstMessageText, CancellationToken cancellationToken)
    {
        var conversation = ticket.ConversationIds.Count > 0 ? await store.FindConversationAsync(ticket.ConversationIds[0], cancellationToken) : null;
        var customer = conditions.Any(c => c.CustomerTags.Count > 0 || c.Segments.Count > 0 || c.Languages.Count > 0)
            ? await grains.GetGrain<ICustomerGrain>(ticket.CustomerId).GetAsync()
            : null;
        var calendars = new Dictionary<string, BusinessCalendar>(StringComparer.Ordinal);
        foreach (var id in conditions.Select(c => c.CalendarId).OfType<string>().Distinct(StringComparer.Ordinal))
            if (await settings.GetAsync(RoutingKinds.Calendar, id, cancellationToken) is { } json)
                calendars[id] = BusinessCalendar.From(RoutingJson.Read<BusinessCalendarDefinition>(json));
        // Conditions are about the ticket as it arrived: a late evaluation still checks the time it was created.
        return new TicketFacts(ticket, conversation?.Channel, conversation?.ChannelAccountId, customer, firstMessageText, ticket.CreatedAt, calendars);
    }
}
