using System.Globalization;
using Crm.Service.AgentConsole;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Hubs;

/// <summary>
/// Turns the change feed into pushes to the agents' hub: after moving the queue counts, "these tickets changed" to
/// everyone (each browser then asks for its own counts), and "ticket changed" to the browsers watching a ticket (a message on it, its delivery
/// status, or the ticket row). Idempotent as the feed requires: a repeated change repeats a harmless notification,
/// and the counts re-read the tickets. Every node subscribes, so a change made on one node reaches agents on all.
/// </summary>
internal sealed class LiveConsoleFeed(QueueCounts counts, IHubContext<AgentHub, IAgentClient> hub, IDbContextFactory<CrmDbContext> contexts)
    : IChangeConsumer
{
    public string Name => "console-live";

    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        await counts.ApplyAsync(changes, cancellationToken);
        var tickets = changes.Where(c => c.Entity == ChangeEntities.Ticket)
            .Select(c => long.Parse(c.EntityId, CultureInfo.InvariantCulture)).ToHashSet();
        var messageIds = changes.Where(c => c.Entity == ChangeEntities.Message && Guid.TryParse(c.EntityId, out _))
            .Select(c => Guid.Parse(c.EntityId)).Distinct().ToList();
        if (messageIds.Count > 0)
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            tickets.UnionWith(await db.Messages.AsNoTracking().Where(m => messageIds.Contains(m.Id)).Select(m => m.TicketNumber).ToListAsync(cancellationToken));
        }
        if (tickets.Count == 0)
            return;
        await hub.Clients.Group(AgentHub.QueuesGroup).QueuesChanged([.. tickets.Order()]);
        foreach (var number in tickets)
            await hub.Clients.Group(AgentHub.TicketGroup(number)).TicketChanged(number);
    }
}
