using System.ComponentModel.DataAnnotations;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Grains.FollowUps;

/// <summary>Customer follow-up log settings (section "FollowUps").</summary>
public sealed class FollowUpOptions
{
    public const string Section = "FollowUps";

    /// <summary>A next follow-up still not done this long after it was due is escalated to the supervisors.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "90.00:00:00")]
    public TimeSpan EscalateAfter { get; set; } = TimeSpan.FromDays(1);
}

/// <summary>
/// One entry of a customer's follow-up log (document kind <c>customer-follow-up</c>). When the entry names a next-due
/// time, a durable reminder (<see cref="ReminderName"/>) is registered before the entry is stored, so a crash in between
/// never leaves a due follow-up without a tick. A tick acts on the stored state and the clock only (a late tick acts at
/// once, a repeated one does nothing): at the due time the owner is told (<c>customer-follow-up-due</c>), and when it is
/// still not done <see cref="FollowUpOptions.EscalateAfter"/> later, the owner and every supervisor
/// (<c>customer-follow-up-missed</c>). The notice is stored (per person, idempotent per milestone) before the milestone
/// is marked, so a crash in between repeats a notice that stores nothing twice, and never loses one; a notifier that
/// fails fails the tick, which comes again.
/// </summary>
public sealed class CustomerFollowUpGrain(IRoutingStore documents, IFollowUpNotifier notifier, IOptions<FollowUpOptions> followUps,
    IOptions<TicketOptions> tickets, TimeProvider time, ILogger<CustomerFollowUpGrain> logger) : Grain, ICustomerFollowUpGrain, IRemindable
{
    public const string ReminderName = "customer-follow-up";
    public const string Kind = "customer-follow-up";

    private CustomerFollowUp? _state;
    private bool _loaded;

    private string DocumentId => this.GetPrimaryKey().ToString("N");

    public async Task<CustomerFollowUp?> GetAsync() => await LoadAsync(CancellationToken.None);

    public async Task<CustomerFollowUp> RecordAsync(CustomerFollowUp entry, CancellationToken cancellationToken = default)
    {
        if (await LoadAsync(cancellationToken) is { } existing)
        {
            // A replay finishes what a crash may have cut short: the closes stored with the entry, none newer.
            await CloseEarlierAsync(existing, cancellationToken);
            return existing;
        }
        var next = entry with
        {
            Id = this.GetPrimaryKey(),
            RecordedAt = time.GetUtcNow(),
            Closes = [.. entry.Closes.Where(id => id != this.GetPrimaryKey()).Distinct().Take(MaxCloses)],
            OwnerKey = (entry.Owner ?? entry.By).ToLowerInvariant(),
            TeamKey = entry.Team?.ToLowerInvariant(),
        };
        if (next.NextDueAt is { } due)
            await ScheduleAsync(due);
        await SaveAsync(next, cancellationToken);
        await CloseEarlierAsync(next, cancellationToken);
        return next;
    }

    /// <summary>At most this many earlier entries are closed by one contact.</summary>
    public const int MaxCloses = 500;

    // The entry is stored: a close that fails is logged, not thrown (RT7), or the stored contact would answer 500 and a
    // client retrying without an Idempotency-Key would record it twice. The closes are stored with the entry: the lists
    // read a named entry as done, and its own next tick closes it.
    private async Task CloseEarlierAsync(CustomerFollowUp entry, CancellationToken cancellationToken)
    {
        foreach (var id in entry.Closes)
        {
            try
            {
                await GrainFactory.GetGrain<ICustomerFollowUpGrain>(id).CompleteAsync(ClosedBy(entry.Id), cancellationToken);
            }
            catch (Exception failed) when (!cancellationToken.IsCancellationRequested)
            {
                logger.LogWarning(failed, "Follow-up {Entry} could not close the earlier follow-up {Earlier}; its next tick closes it", entry.Id, id);
            }
        }
    }

    private static string ClosedBy(Guid entry) => $"follow-up:{entry:N}";

    /// <summary>When a close cut short by a crash took effect: the closer's <c>RecordedAt</c>, which is when the lists
    /// already showed this entry done, not when the stored copy catches up (review CR6). Now if the closer is gone.</summary>
    private async Task<DateTimeOffset> ClosedAtAsync(Guid closer, DateTimeOffset fallback, CancellationToken cancellationToken) =>
        await documents.GetAsync(Kind, closer.ToString("N"), cancellationToken) is { } json ? RoutingJson.Read<CustomerFollowUp>(json).RecordedAt : fallback;

    public async Task<CustomerFollowUp?> CompleteAsync(string? by = null, CancellationToken cancellationToken = default)
    {
        if (await LoadAsync(cancellationToken) is not { DoneAt: null } state)
            return _state;
        await SaveAsync(state with { DoneAt = time.GetUtcNow(), DoneBy = by }, cancellationToken);
        await UnregisterAsync();
        return _state;
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != ReminderName)
            return;
        var state = await LoadAsync(CancellationToken.None);
        var now = time.GetUtcNow();
        if (state is not { DoneAt: null, NextDueAt: { } due })
        {
            await UnregisterAsync();
            return;
        }
        if (now < due)
            return;
        // A later entry that closes this one was stored, but a crash came before it closed this: it is done, not due.
        // Checked before the escalated case too (RT2), so an escalated entry's stray tick still records the close.
        if (await documents.FollowUpClosedByAsync(state.CustomerId, state.Id, CancellationToken.None) is { } closer)
        {
            await SaveAsync(state with { DoneAt = await ClosedAtAsync(closer, now, CancellationToken.None), DoneBy = ClosedBy(closer) }, CancellationToken.None);
            await UnregisterAsync();
            return;
        }
        if (state.EscalatedAt is not null)
        {
            await UnregisterAsync();
            return;
        }
        var owner = state.Owner ?? state.By;
        if (state.RemindedAt is null)
        {
            await notifier.NotifyAsync(new FollowUpNotice("customer-follow-up-due", state.Ticket, state.CustomerId, [owner], NotifySupervisors: false, state.Team,
                Cause: $"{Kind}:{DocumentId}:due:{due.UtcTicks}"));
            await SaveAsync(state = state with { RemindedAt = now }, CancellationToken.None);
        }
        var escalateAt = due + followUps.Value.EscalateAfter;
        if (now < escalateAt)
        {
            await ScheduleAsync(escalateAt);
            return;
        }
        await notifier.NotifyAsync(new FollowUpNotice("customer-follow-up-missed", state.Ticket, state.CustomerId, [owner], NotifySupervisors: true, state.Team,
            Cause: $"{Kind}:{DocumentId}:missed:{due.UtcTicks}"));
        await SaveAsync(state with { EscalatedAt = now }, CancellationToken.None);
        await UnregisterAsync();
    }

    private async Task ScheduleAsync(DateTimeOffset at)
    {
        var wait = at - time.GetUtcNow();
        await this.RegisterOrUpdateReminder(ReminderName, wait < TimeSpan.Zero ? TimeSpan.Zero : wait, tickets.Value.ReminderPeriod);
    }

    private async Task UnregisterAsync()
    {
        if (await this.GetReminder(ReminderName) is { } reminder)
            await this.UnregisterReminder(reminder);
    }

    private async Task SaveAsync(CustomerFollowUp next, CancellationToken cancellationToken)
    {
        try
        {
            await documents.PutAsync(Kind, DocumentId, RoutingJson.Write(next), cancellationToken);
        }
        catch
        {
            _loaded = false;
            throw;
        }
        _state = next;
    }

    private async Task<CustomerFollowUp?> LoadAsync(CancellationToken cancellationToken)
    {
        if (_loaded)
            return _state;
        _state = await documents.GetAsync(Kind, DocumentId, cancellationToken) is { } json ? RoutingJson.Read<CustomerFollowUp>(json) : null;
        _loaded = true;
        // A later entry names this one in its closes, but a crash cut the close short (routing5 RT2): the stored copy is
        // closed when it is read, not only at its next tick (an escalated entry has none).
        if (_state is { DoneAt: null } open && await documents.FollowUpClosedByAsync(open.CustomerId, open.Id, cancellationToken) is { } closer)
        {
            await SaveAsync(open with { DoneAt = await ClosedAtAsync(closer, time.GetUtcNow(), cancellationToken), DoneBy = ClosedBy(closer) }, cancellationToken);
            await UnregisterAsync();
        }
        return _state;
    }
}
