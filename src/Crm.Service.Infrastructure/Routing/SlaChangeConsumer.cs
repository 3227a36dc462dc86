using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Grains.Storage;
using Microsoft.Extensions.Logging;

namespace Crm.Service.Infrastructure.Routing;

/// <summary>Keeps every ticket's SLA clocks in step with the ticket: each changed ticket (or ticket of a new message)
/// is synced once per batch. Idempotent: a sync reads the ticket as it is now.</summary>
internal sealed class SlaChangeConsumer(IGrainFactory grains, ICrmStore store) : IChangeConsumer
{
    public string Name => "sla";

    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        var tickets = new SortedSet<long>();
        foreach (var change in changes)
        {
            if (change.Entity == ChangeEntities.Ticket && long.TryParse(change.EntityId, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
                tickets.Add(number);
            else if (change.Entity == ChangeEntities.Message && Guid.TryParse(change.EntityId, out var id)
                && await store.FindMessageAsync(id, cancellationToken) is { } message)
                tickets.Add(message.TicketNumber);
        }
        foreach (var number in tickets)
            await grains.GetGrain<ISlaClockGrain>(number).SyncAsync(cancellationToken);
    }
}

/// <summary>The notifier when the host provides none (a bare silo): notices go to the log.</summary>
internal sealed class LoggingSlaNotifier(ILogger<LoggingSlaNotifier> logger) : ISlaNotifier
{
    public Task NotifyAsync(SlaNotice notice, CancellationToken cancellationToken = default)
    {
        logger.LogWarning("SLA {Milestone} of {Metric} on ticket #{Ticket} (assignee {Assignee})", notice.Milestone, notice.Metric, notice.Ticket, notice.Assignee ?? "none");
        return Task.CompletedTask;
    }
}
