using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;

namespace Crm.Service.Grains.Routing;

/// <summary>Which routing rule applies to a ticket and what it changes (pure).</summary>
public static class RoutingRules
{
    /// <summary>The first enabled rule, by order then id, whose conditions match.</summary>
    public static RoutingRule? FirstMatch(IEnumerable<RoutingRule> rules, TicketFacts facts) =>
        Ordered(rules).FirstOrDefault(r => r.Enabled && TicketConditionMatcher.Matches(r.Conditions, facts));

    public static IEnumerable<RoutingRule> Ordered(IEnumerable<RoutingRule> rules) =>
        rules.OrderBy(r => r.Order).ThenBy(r => r.Id, StringComparer.Ordinal);

    /// <summary>What of <paramref name="rule"/> is not on <paramref name="ticket"/> yet; null when nothing is left.
    /// The team is set only on a ticket nobody gave a team or an assignee (a person's choice wins over a rule); tags
    /// are added (<see cref="TicketChange.AddTags"/>: a tag someone adds meanwhile is kept); applying the result twice
    /// changes nothing the second time.</summary>
    public static TicketChange? ChangeFor(RoutingRule rule, TicketSnapshot ticket)
    {
        var team = rule.Team is { } t && ticket.Team is null && string.IsNullOrEmpty(ticket.Assignee) ? t : null;
        var priority = rule.Priority is { } p && p != ticket.Priority ? p : (TicketPriority?)null;
        var tags = rule.AddTags.Where(tag => !ticket.Tags.Contains(tag, StringComparer.OrdinalIgnoreCase)).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        if (team is null && priority is null && tags.Count == 0)
            return null;
        return new TicketChange { Team = team, Priority = priority, AddTags = tags.Count > 0 ? tags : null };
    }
}
