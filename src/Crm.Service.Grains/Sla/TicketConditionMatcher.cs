using Crm.Service.Contracts;

namespace Crm.Service.Grains.Sla;

/// <summary>What conditions are checked against: the ticket and, where known, its channel and customer.</summary>
public sealed record TicketFacts(
    TicketSnapshot Ticket,
    ChannelKind? Channel,
    string? ChannelAccountId,
    CustomerSnapshot? Customer,
    string? FirstMessageText,
    DateTimeOffset At,
    IReadOnlyDictionary<string, BusinessCalendar>? Calendars = null);

/// <summary>Evaluates <see cref="TicketConditions"/> (routing rules and SLA policies share them).</summary>
public static class TicketConditionMatcher
{
    public static bool Matches(TicketConditions c, TicketFacts f)
    {
        var t = f.Ticket;
        if (c.Channels.Count > 0 && (f.Channel is not { } channel || !c.Channels.Contains(channel)))
            return false;
        if (c.ChannelAccounts.Count > 0 && (f.ChannelAccountId is null || !c.ChannelAccounts.Contains(f.ChannelAccountId, StringComparer.Ordinal)))
            return false;
        if (c.Priorities.Count > 0 && !c.Priorities.Contains(t.Priority))
            return false;
        if (c.Teams.Count > 0 && (t.Team is null || !c.Teams.Contains(t.Team, StringComparer.Ordinal)))
            return false;
        if (c.CustomerTags.Count > 0 && (f.Customer is null || !f.Customer.Tags.Any(tag => c.CustomerTags.Contains(tag, StringComparer.OrdinalIgnoreCase))))
            return false;
        if (c.Segments.Count > 0 && (f.Customer?.CustomFields.GetValueOrDefault("segment") is not { } segment
            || !c.Segments.Contains(segment, StringComparer.OrdinalIgnoreCase)))
            return false;
        if (c.Languages.Count > 0 && (f.Customer?.Language is not { } language
            || !c.Languages.Any(l => language.StartsWith(l, StringComparison.OrdinalIgnoreCase))))
            return false;
        if (c.Keywords.Count > 0 && !c.Keywords.Any(k => t.Subject.Contains(k, StringComparison.OrdinalIgnoreCase)
            || (f.FirstMessageText?.Contains(k, StringComparison.OrdinalIgnoreCase) ?? false)))
            return false;
        BusinessCalendar? calendar = null;
        // A condition naming a calendar that is gone matches nothing rather than everything.
        if (c.CalendarId is { } calendarId && (f.Calendars is null || !f.Calendars.TryGetValue(calendarId, out calendar)))
            return false;
        if (c.InBusinessHours is { } open && calendar is not null && calendar.IsOpen(f.At) != open)
            return false;
        if (c.From is { } from && c.To is { } to)
        {
            var zone = c.TimeZone is not null ? BusinessCalendar.FindZone(c.TimeZone) : calendar?.Zone ?? TimeZoneInfo.Utc;
            var time = TimeZoneInfo.ConvertTime(f.At, zone).TimeOfDay;
            var inside = from <= to ? time >= from && time < to : time >= from || time < to;
            if (!inside)
                return false;
        }
        return true;
    }
}
