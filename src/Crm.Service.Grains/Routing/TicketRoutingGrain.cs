using System.Globalization;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Grains.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Grains.Routing;

/// <summary>
/// Routes one new ticket through the routing rules, once. The decision (rule and change) is stored before it is
/// written to the ticket and marked applied after, so a redelivered change or a second consumer asking again returns
/// it without a second evaluation, and a crash in between applies the stored decision again (idempotently: the change
/// carries a request id, see <see cref="TicketChange.RequestId"/>), never a newer rule's. A late evaluation checks the
/// ticket's creation time. Nothing here throws for one ticket's sake (a merged ticket, a change the ticket refuses, a
/// first message not stored yet): that would stop the change consumers for every ticket.
/// </summary>
public sealed class TicketRoutingGrain(IRoutingStore settings, ICrmStore store, IOptions<TicketOptions> options, TimeProvider time, ILogger<TicketRoutingGrain> logger)
    : Grain, ITicketRoutingGrain, IRemindable
{
    public const string Actor = "routing";
    /// <summary>Durable reminder of a ticket whose routing waits for its first message.</summary>
    public const string ReminderName = "routing-wait";

    /// <summary>How long a rule with keywords waits for the first message before it is evaluated on the subject only
    /// (a ticket whose message never got stored must not stay unrouted).</summary>
    public static readonly TimeSpan FirstMessageWait = TimeSpan.FromMinutes(1);

    private TicketRouting? _state;
    private bool _loaded;

    private long Number => this.GetPrimaryKeyLong();
    private string DocumentId => Number.ToString(CultureInfo.InvariantCulture);

    public async Task<TicketRouting?> RouteAsync(CancellationToken cancellationToken = default)
    {
        await LoadAsync(cancellationToken);
        if (_state is { Applied: true })
            return _state;
        var ticketGrain = GrainFactory.GetGrain<ITicketGrain>(Number);
        if (await ticketGrain.GetAsync() is not { } ticket)
            return null;
        var now = time.GetUtcNow();
        if (_state is null or { Waiting: true })
        {
            var rules = (await settings.RoutingRulesAsync(cancellationToken)).Where(r => r.Enabled).ToList();
            if (rules.Count == 0 && _state is null)
                // Nothing to decide and nothing stored: no write per ticket while routing is not in use.
                return new TicketRouting { DecidedAt = now, Applied = true };
            if (ticket.MergedInto is { } into)
                return await SaveAsync(new TicketRouting { DecidedAt = now, Applied = true, Outcome = $"not routed: merged into #{into}" }, cancellationToken);
            string? text = null;
            if (rules.Any(r => r.Conditions.Keywords.Count > 0))
            {
                text = await settings.FirstCustomerTextAsync(Number, cancellationToken);
                if (text is null && ticket.ConversationIds.Count > 0 && now - ticket.CreatedAt < FirstMessageWait)
                    return await WaitForFirstMessageAsync(ticket, now, cancellationToken);
            }
            var facts = await TicketFactsLoader.LoadAsync(GrainFactory, store, settings, ticket, [.. rules.Select(r => r.Conditions)], text, cancellationToken);
            var rule = RoutingRules.FirstMatch(rules, facts);
            var change = rule is null ? null : RoutingRules.ChangeFor(rule, ticket);
            await SaveAsync(new TicketRouting { RuleId = rule?.Id, Change = change, DecidedAt = now, Applied = change is null, PriorityBefore = ticket.Priority },
                cancellationToken);
            if (change is null)
                return _state;
        }
        return await ApplyStoredAsync(ticketGrain, ticket, cancellationToken);
    }

    public async Task ResumeAsync(CancellationToken cancellationToken = default)
    {
        if (await LoadAsync(cancellationToken) is not { Waiting: true })
            return;
        if (await RouteAsync(cancellationToken) is { Waiting: false })
            await HandOnAsync(cancellationToken);
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != ReminderName)
            return;
        if (await RouteAsync(CancellationToken.None) is { Waiting: true })
            return;
        await HandOnAsync(CancellationToken.None);
    }

    /// <summary>The consumers left a waiting ticket alone; now that it is routed, it reaches its SLA clock and its team's
    /// queue (both idempotent). The reminder goes only after that, so a failure here is retried at the next tick.</summary>
    private async Task HandOnAsync(CancellationToken cancellationToken)
    {
        try
        {
            await GrainFactory.GetGrain<ISlaClockGrain>(Number).SyncAsync(cancellationToken);
            if (await GrainFactory.GetGrain<ITicketGrain>(Number).GetAsync() is { Team: { Length: > 0 } team } ticket)
                await GrainFactory.GetGrain<ITeamQueueGrain>(team).ObserveAsync(ticket, cancellationToken);
        }
        catch (Exception ex) when (ex is DomainException or InvalidOperationException or ArgumentException or System.Text.Json.JsonException)
        {
            // Fails the same way every time (the SLA consumer records such tickets too): do not tick forever for it.
            logger.LogError(ex, "Ticket #{Number} was routed late, but its SLA clock or team queue refused it", Number);
        }
        if (await this.GetReminder(ReminderName) is { } reminder)
            await this.UnregisterReminder(reminder);
    }

    private async Task<TicketRouting> WaitForFirstMessageAsync(TicketSnapshot ticket, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (_state is not { Waiting: true })
        {
            // The durable reminder comes first, then the stored wait: a crash in between leaves a tick that routes the
            // ticket (or waits again), never a stored wait that nothing wakes up.
            var due = ticket.CreatedAt + FirstMessageWait - now;
            await this.RegisterOrUpdateReminder(ReminderName, due < TimeSpan.Zero ? TimeSpan.Zero : due, options.Value.ReminderPeriod);
            await SaveAsync(new TicketRouting { DecidedAt = now, Waiting = true }, cancellationToken);
            logger.LogInformation("Ticket #{Number}: routing waits for the first message", Number);
        }
        return _state!;
    }

    /// <summary>Writes the stored decision to the ticket: only the part not on it yet, the priority only while the
    /// ticket keeps the priority it had when the rule was chosen, and under one request id, so a retry after a crash
    /// between the change and the mark changes nothing. A change the ticket refuses is kept as the outcome.</summary>
    private async Task<TicketRouting> ApplyStoredAsync(ITicketGrain ticketGrain, TicketSnapshot ticket, CancellationToken cancellationToken)
    {
        var state = _state!;
        var stored = state.Change!;
        if (ticket.MergedInto is { } into)
            return await SaveAsync(state with { Applied = true, Outcome = $"not applied: merged into #{into}" }, cancellationToken);
        var left = RoutingRules.ChangeFor(new RoutingRule
        {
            Id = state.RuleId ?? "",
            Name = "",
            Team = stored.Team,
            Priority = state.PriorityBefore is null || state.PriorityBefore == ticket.Priority ? stored.Priority : null,
            // Decisions stored before AddTags carried the whole list.
            AddTags = stored.AddTags ?? (stored.Tags is null ? [] : [.. stored.Tags.Except(ticket.Tags, StringComparer.OrdinalIgnoreCase)]),
        }, ticket);
        string? outcome = null;
        if (left is not null)
        {
            var requestId = $"routing:{Number}:{state.DecidedAt.UtcTicks}";
            try
            {
                await ticketGrain.ChangeAsync(left with { RequestId = requestId }, Actor, cancellationToken);
            }
            catch (DomainException ex) when (ex.Field == "tags" && (left.Team is not null || left.Priority is not null))
            {
                // Too many tags: the team and priority still matter more than the tags.
                outcome = $"tags refused: {ex.Message}";
                try
                {
                    await ticketGrain.ChangeAsync(left with { AddTags = null, RequestId = requestId + ":no-tags" }, Actor, cancellationToken);
                }
                catch (DomainException again)
                {
                    outcome = $"refused: {again.Message}";
                }
            }
            catch (DomainException ex)
            {
                outcome = $"refused: {ex.Message}";
            }
            if (outcome is null)
                logger.LogInformation("Ticket #{Number} routed by rule {Rule}", Number, state.RuleId);
            else
                logger.LogWarning("Ticket #{Number}: routing rule {Rule} {Outcome}", Number, state.RuleId, outcome);
        }
        return await SaveAsync(state with { Applied = true, Outcome = outcome }, cancellationToken);
    }

    private async Task<TicketRouting?> LoadAsync(CancellationToken cancellationToken)
    {
        if (!_loaded)
        {
            _state = await settings.GetAsync(RoutingKinds.TicketRouting, DocumentId, cancellationToken) is { } json ? RoutingJson.Read<TicketRouting>(json) : null;
            _loaded = true;
        }
        return _state;
    }

    private async Task<TicketRouting> SaveAsync(TicketRouting next, CancellationToken cancellationToken)
    {
        try
        {
            await settings.PutAsync(RoutingKinds.TicketRouting, DocumentId, RoutingJson.Write(next), cancellationToken);
        }
        catch
        {
            // Whether it was stored is unknown: the next call reads the store again.
            _loaded = false;
            throw;
        }
        _state = next;
        return next;
    }
}
