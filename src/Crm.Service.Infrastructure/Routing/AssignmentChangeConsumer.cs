using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;
using Microsoft.Extensions.Logging;

namespace Crm.Service.Infrastructure.Routing;

/// <summary>Routes every new ticket (routing rules) and then hands every changed ticket that has a team to that team's queue grain (which queues, assigns or frees
/// capacity). Idempotent: the grain looks at the ticket as it is now.</summary>
internal sealed class AssignmentChangeConsumer(IGrainFactory grains, ILogger<AssignmentChangeConsumer> logger) : IChangeConsumer
{
    public string Name => "assignment";

    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        var tickets = changes.Where(c => c.Entity == ChangeEntities.Ticket)
            .Select(c => long.TryParse(c.EntityId, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0)
            .Where(n => n > 0).Distinct();
        var created = RoutingChanges.CreatedTickets(changes);
        foreach (var number in tickets)
        {
            try
            {
                // A new ticket goes through the routing rules before any queue sees it, so it lands in the rule's team;
                // one whose routing waits for its first message reaches its queue when it is routed.
                if (created.Contains(number) && await grains.GetGrain<ITicketRoutingGrain>(number).RouteAsync(cancellationToken) is { Waiting: true })
                    continue;
                if (await grains.GetGrain<ITicketGrain>(number).GetAsync() is { Team: { Length: > 0 } team } ticket)
                    await grains.GetGrain<ITeamQueueGrain>(team).ObserveAsync(ticket, cancellationToken);
            }
            catch (Exception ex) when (SlaChangeConsumer.IsPoison(ex))
            {
                // One ticket that fails the same way every time must not stop assignment for all the others.
                logger.LogError(ex, "Assignment of ticket #{Number} failed; skipped", number);
            }
        }
    }
}

internal static class RoutingChanges
{
    /// <summary>Tickets created in this batch: they are routed (once) before anything else acts on them.</summary>
    public static HashSet<long> CreatedTickets(IReadOnlyList<Change> changes) =>
    [
        .. changes.Where(c => c.Entity == ChangeEntities.Ticket && c.Kind == ChangeKinds.Created)
            .Select(c => long.TryParse(c.EntityId, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0)
            .Where(n => n > 0),
    ];
}
