using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Infrastructure.Routing;

/// <summary>Hands every changed ticket that has a team to that team's queue grain (which queues, assigns or frees
/// capacity). Idempotent: the grain looks at the ticket as it is now.</summary>
internal sealed class AssignmentChangeConsumer(IGrainFactory grains) : IChangeConsumer
{
    public string Name => "assignment";

    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        var tickets = changes.Where(c => c.Entity == ChangeEntities.Ticket)
            .Select(c => long.TryParse(c.EntityId, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0)
            .Where(n => n > 0).Distinct();
        foreach (var number in tickets)
        {
            if (await grains.GetGrain<ITicketGrain>(number).GetAsync() is { Team: { Length: > 0 } team } ticket)
                await grains.GetGrain<ITeamQueueGrain>(team).ObserveAsync(ticket, cancellationToken);
        }
    }
}
