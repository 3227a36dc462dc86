using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Grains.Storage;
using Microsoft.Extensions.Logging;

namespace Crm.Service.Infrastructure.Routing;

/// <summary>Keeps every ticket's SLA clocks in step with the ticket: each changed ticket (or ticket of a new message)
/// is synced once per batch. Idempotent: a sync reads the ticket as it is now.</summary>
internal sealed class SlaChangeConsumer(IGrainFactory grains, ICrmStore store, IRoutingStore settings, TimeProvider time, ILogger<SlaChangeConsumer> logger) : IChangeConsumer
{
    /// <summary>Errors that repeat on every attempt. Store and cluster errors (I/O, timeouts) are not among them: the
    /// batch is handed again for those.</summary>
    internal static bool IsPoison(Exception ex) =>
        ex is DomainException or InvalidOperationException or ArgumentException or OverflowException or NullReferenceException or FormatException or System.Text.Json.JsonException
        && ex is not OperationCanceledException and not ObjectDisposedException;

    public string Name => "sla";

    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        var tickets = new SortedSet<long>();
        var messaged = new HashSet<long>();
        foreach (var change in changes)
        {
            if (change.Entity == ChangeEntities.Ticket && long.TryParse(change.EntityId, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
                tickets.Add(number);
            else if (change.Entity == ChangeEntities.Message && Guid.TryParse(change.EntityId, out var id)
                && await store.FindMessageAsync(id, cancellationToken) is { } message)
            {
                tickets.Add(message.TicketNumber);
                if (message.Direction == MessageDirection.Inbound)
                    messaged.Add(message.TicketNumber);
            }
        }
        var created = RoutingChanges.CreatedTickets(changes);
        foreach (var number in tickets)
        {
            try
            {
                // The policy is chosen on the routed ticket (its team, priority and tags from the routing rules). A
                // ticket whose routing waits for its first message is synced once it is routed (its message's change
                // resumes it, or the routing grain's reminder does).
                if (created.Contains(number) && await grains.GetGrain<ITicketRoutingGrain>(number).RouteAsync(cancellationToken) is { Waiting: true })
                    continue;
                if (messaged.Contains(number))
                    await grains.GetGrain<ITicketRoutingGrain>(number).ResumeAsync(cancellationToken);
                await grains.GetGrain<ISlaClockGrain>(number).SyncAsync(cancellationToken);
            }
            catch (Exception ex) when (IsPoison(ex))
            {
                // A ticket or a setting that fails the same way every time (a refused change, a calendar with no open
                // hours within reach) must not hold up every other ticket's clocks: log it, keep it, go on.
                logger.LogError(ex, "SLA sync of ticket #{Number} failed; skipped (see routing document sla-failure/{Number})", number, number);
                await settings.PutAsync(RoutingKinds.SlaFailure, number.ToString(CultureInfo.InvariantCulture),
                    RoutingJson.Write(new { error = ex.GetType().Name, ex.Message, at = time.GetUtcNow() }), cancellationToken);
            }
        }
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

/// <summary>The follow-up notifier when the host provides none (a bare silo): notices go to the log.</summary>
internal sealed class LoggingFollowUpNotifier(ILogger<LoggingFollowUpNotifier> logger) : Grains.FollowUps.IFollowUpNotifier
{
    public Task NotifyAsync(FollowUpNotice notice, CancellationToken cancellationToken = default)
    {
        logger.LogWarning("Follow-up {Kind} (ticket #{Ticket}, customer {Customer}) for {People}", notice.Kind, notice.Ticket, notice.CustomerId, string.Join(", ", notice.People));
        return Task.CompletedTask;
    }
}
