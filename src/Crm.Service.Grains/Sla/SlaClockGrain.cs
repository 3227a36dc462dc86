using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Grains.Sla;

/// <summary>
/// The SLA clocks of one ticket. Every milestone (warning, escalation level) is stored as fired before anyone is
/// notified, so a restart or a repeated tick never fires it twice; the escalation's ticket change comes first and is
/// idempotent, so a crash before the mark only repeats a change that is already there. One durable reminder, due at
/// the earliest pending milestone and re-ticking at <see cref="TicketOptions.ReminderPeriod"/>, drives it; a tick
/// acts on the stored clocks and the clock's time only, so late, missed or repeated ticks are harmless.
/// </summary>
public sealed class SlaClockGrain(
    IRoutingStore settings,
    ICrmStore store,
    ISlaNotifier notifier,
    IOptions<TicketOptions> options,
    TimeProvider time,
    ILogger<SlaClockGrain> logger) : Grain, ISlaClockGrain, IRemindable
{
    internal const string ReminderName = "sla";

    private SlaClocks? _state;
    private SlaPolicy? _policy;
    private BusinessCalendar _calendar = BusinessCalendar.AlwaysOpen;

    private long Number => this.GetPrimaryKeyLong();
    private string DocumentId => Number.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public async Task<SlaStatus> GetAsync()
    {
        var state = await LoadAsync(CancellationToken.None);
        if (_policy is null && state.PolicyId is { } id)
            await LoadPolicyAsync(id, CancellationToken.None);
        return Status(state);
    }

    public async Task<SlaStatus> SyncAsync(CancellationToken cancellationToken = default)
    {
        var state = await LoadAsync(cancellationToken);
        // The stored row, not the ticket grain's memory: a customer message on an open ticket writes its time
        // (LastCustomerMessageAt) to the row only, and the next-response clock starts from it.
        var ticket = (await store.FindTicketAsync(Number, cancellationToken))?.ToSnapshot();
        if (ticket is null)
            return Status(state);
        var now = time.GetUtcNow();
        if (state.PolicyId is { } chosen)
            await LoadPolicyAsync(chosen, cancellationToken);
        else
            await ChoosePolicyAsync(ticket, cancellationToken);
        var next = SlaRules.Sync(state, ticket, _policy, _calendar, now);
        if (!Same(next, state))
            await SaveAsync(next, cancellationToken);
        await FireDueAsync(ticket, cancellationToken);
        return Status(_state!);
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != ReminderName)
            return;
        await SyncAsync(CancellationToken.None);
    }

    private async Task FireDueAsync(TicketSnapshot ticket, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        foreach (var milestone in SlaRules.Pending(_state!, _policy, _calendar).TakeWhile(m => m.At <= now))
        {
            var level = milestone.Level;
            SlaEvent? failed = null;
            if (level is not null && SlaRules.ChangeFor(level, ticket) is { } change)
            {
                try
                {
                    ticket = await GrainFactory.GetGrain<ITicketGrain>(Number).ChangeAsync(change, "sla", cancellationToken);
                }
                catch (DomainException ex)
                {
                    // The ticket refuses the change (50 tags already, merged meanwhile): the milestone still counts as
                    // fired and people are still told, or one ticket would retry (and block) forever.
                    logger.LogWarning("Ticket #{Number}: the SLA {Milestone} escalation of {Metric} could not change the ticket: {Reason}", Number, milestone.Name, milestone.Metric, ex.Message);
                    failed = new SlaEvent(milestone.Metric, milestone.Name + "-change-refused", milestone.At, now);
                }
            }
            var fired = _state! with
            {
                Fired = [.. _state.Fired, milestone.Key],
                Events = failed is null
                    ? [.. _state.Events, new SlaEvent(milestone.Metric, milestone.Name, milestone.At, now)]
                    : [.. _state.Events, new SlaEvent(milestone.Metric, milestone.Name, milestone.At, now), failed],
            };
            // Stored per person (idempotent per milestone key) before the milestone is marked fired: a crash in between
            // repeats the call, which stores nothing twice, rather than losing the notice.
            await notifier.NotifyAsync(new SlaNotice(Number, milestone.Metric, milestone.Name, ticket.Assignee,
                level?.NotifyAssignee ?? true, level?.NotifySupervisors ?? false, Cause: $"sla:{Number}:{milestone.Key}"), cancellationToken);
            await SaveAsync(fired, cancellationToken);
        }
        await ScheduleAsync();
    }

    private async Task ScheduleAsync()
    {
        var next = SlaRules.Pending(_state!, _policy, _calendar).FirstOrDefault();
        if (next is null)
        {
            if (await this.GetReminder(ReminderName) is { } reminder)
                await this.UnregisterReminder(reminder);
            return;
        }
        var due = next.At - time.GetUtcNow();
        await this.RegisterOrUpdateReminder(ReminderName, due < TimeSpan.Zero ? TimeSpan.Zero : due, options.Value.ReminderPeriod);
    }

    private async Task ChoosePolicyAsync(TicketSnapshot ticket, CancellationToken cancellationToken)
    {
        var policies = await settings.PoliciesAsync(cancellationToken);
        if (policies.Count == 0)
            return;
        var conditions = policies.Select(p => p.Conditions).ToList();
        var text = conditions.Any(c => c.Keywords.Count > 0) ? await settings.FirstCustomerTextAsync(Number, cancellationToken) : null;
        var facts = await TicketFactsLoader.LoadAsync(GrainFactory, store, settings, ticket, conditions, text, cancellationToken);
        _policy = policies.FirstOrDefault(p => TicketConditionMatcher.Matches(p.Conditions, facts));
        _calendar = await settings.CalendarAsync(_policy?.CalendarId, cancellationToken);
    }

    private async Task LoadPolicyAsync(string id, CancellationToken cancellationToken)
    {
        // Re-read on every sync: an admin's change to targets or escalations applies to running clocks at once.
        var json = await settings.GetAsync(RoutingKinds.SlaPolicy, id, cancellationToken);
        _policy = json is null ? null : RoutingJson.Read<SlaPolicy>(json);
        _calendar = await settings.CalendarAsync(_policy?.CalendarId, cancellationToken);
    }

    private async Task<SlaClocks> LoadAsync(CancellationToken cancellationToken)
    {
        if (_state is not null)
            return _state;
        var json = await settings.GetAsync(RoutingKinds.SlaClocks, DocumentId, cancellationToken);
        return _state = json is null ? new SlaClocks() : RoutingJson.Read<SlaClocks>(json);
    }

    private async Task SaveAsync(SlaClocks next, CancellationToken cancellationToken)
    {
        await settings.PutAsync(RoutingKinds.SlaClocks, DocumentId, RoutingJson.Write(next), cancellationToken);
        _state = next;
    }

    private static bool Same(SlaClocks a, SlaClocks b) =>
        a.PolicyId == b.PolicyId && a.Clocks.Count == b.Clocks.Count && a.Clocks.All(c => b.Clocks.TryGetValue(c.Key, out var other) && other == c.Value);

    private SlaStatus Status(SlaClocks state)
    {
        var now = time.GetUtcNow();
        return new SlaStatus(Number, state.PolicyId,
            [.. state.Clocks.Values.OrderBy(c => c.Metric).Select(c => new SlaClockStatus(c.Metric, c.Target, c.Elapsed(_calendar, now), c.Running,
                c.DueAt(_calendar), c.StoppedAt, c.IsBreached(_calendar, now)))],
            state.Events,
            SlaRules.Pending(state, _policy, _calendar).FirstOrDefault()?.At);
    }
}
