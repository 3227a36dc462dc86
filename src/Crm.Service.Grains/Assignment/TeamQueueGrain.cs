using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Grains.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Grains.Assignment;

/// <summary>What a team queue stores (one JSON document per team): the queue, who holds what, and the decisions not yet
/// written to their tickets.</summary>
public sealed record TeamQueueState
{
    public TeamAssignmentSettings Settings { get; init; } = new();
    public IReadOnlyList<QueuedTicket> Waiting { get; init; } = [];
    public IReadOnlyDictionary<long, string> Assigned { get; init; } = new Dictionary<long, string>();
    public long Sequence { get; init; }
    public IReadOnlyDictionary<string, long> LastAssigned { get; init; } = new Dictionary<string, long>();
    /// <summary>Decided and stored, not yet confirmed on the ticket: applied again (idempotently) on activation.</summary>
    public IReadOnlyDictionary<long, string> Pending { get; init; } = new Dictionary<long, string>();
    public IReadOnlyDictionary<string, DateTimeOffset> OfflineSince { get; init; } = new Dictionary<string, DateTimeOffset>();
    /// <summary>Held tickets that are web chats (concurrent chats).</summary>
    public IReadOnlyList<long> Chats { get; init; } = [];
    /// <summary>Held tickets that are pending or on hold (their SLA clock paused; not load for least loaded).</summary>
    public IReadOnlyList<long> Paused { get; init; } = [];
}

/// <summary>
/// One team's queue: the single, non-reentrant writer of its assignment decisions, so concurrent tickets are handed
/// out one at a time and none goes to two agents. A decision is stored (with the queue) before it is written to the
/// ticket, and stored decisions not yet confirmed are written again on the next activation, so a crash between the two
/// neither loses nor doubles an assignment. Presence is not stored: it is asked for on activation and kept in step by the console's changes.
/// </summary>
public sealed class TeamQueueGrain(IRoutingStore store, ICrmStore crm, IAgentPresenceLookup presence, IOptions<TicketOptions> options, TimeProvider time, ILogger<TeamQueueGrain> logger)
    : Grain, ITeamQueueGrain, IRemindable
{
    public const string SkillTagPrefix = "skill:";
    internal const string OfflineReminder = "offline-return";

    private readonly AssignmentBoard _board = new();
    private TeamQueueState _state = new();

    private string Team => this.GetPrimaryKeyString();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (await store.GetAsync(RoutingKinds.TeamQueue, Team, cancellationToken) is { } json)
            _state = RoutingJson.Read<TeamQueueState>(json);
        _board.Configure(_state.Settings);
        var chats = _state.Chats.ToHashSet();
        var paused = _state.Paused.ToHashSet();
        foreach (var (ticket, agent) in _state.Assigned)
            _board.Hold(ticket, agent, chats.Contains(ticket), paused.Contains(ticket));
        foreach (var ticket in _state.Waiting)
            _board.Enqueue(ticket);
        _board.Restore(_state.Sequence, _state.LastAssigned);
        // Presence is not stored; it is asked for here, since the changes that set it may have come before this activation.
        foreach (var agent in await presence.OnlineAsync([.. _state.Settings.Agents.Select(a => a.UserId)], cancellationToken))
            _board.SetOnline(agent, true);
        await ApplyPendingAsync(cancellationToken);
    }

    public async Task<TeamQueueSnapshot> ConfigureAsync(TeamAssignmentSettings settings, CancellationToken cancellationToken = default)
    {
        _board.Configure(settings);
        _state = _state with { Settings = settings };
        await DispatchAndSaveAsync(cancellationToken);
        return Snapshot();
    }

    public Task<TeamQueueSnapshot> GetAsync() => Task.FromResult(Snapshot());

    public async Task ObserveAsync(TicketSnapshot observed, CancellationToken cancellationToken = default)
    {
        var number = observed.Number;
        // The observation may be older than a decision made since (a redelivered change): decide on the ticket as it is now.
        if (await GrainFactory.GetGrain<ITicketGrain>(number).GetAsync() is not { } ticket)
        {
            _board.Forget(number);
            await DispatchAndSaveAsync(cancellationToken);
            return;
        }
        if (ticket.Team != Team || ticket.MergedInto is not null || ticket.Status is TicketStatus.Resolved or TicketStatus.Closed)
            _board.Forget(number);
        else if (!string.IsNullOrEmpty(ticket.Assignee))
        {
            // Pending and on hold pause the ticket's SLA clock: still open (capacity), but not load for least loaded.
            var paused = ticket.Status is TicketStatus.Pending or TicketStatus.OnHold;
            var held = _board.Assigned.GetValueOrDefault(number) == ticket.Assignee;
            // Our own decision echoing back through the feed is already held; someone's manual pick counts from now.
            if (held && !_state.Pending.ContainsKey(number) && _board.Paused.Contains(number) == paused)
                return;
            _board.Hold(number, ticket.Assignee, await IsChatAsync(ticket, cancellationToken), paused);
        }
        else if (!_board.IsQueued(number))
            _board.Enqueue(new QueuedTicket(number, ticket.Priority, ticket.CreatedAt, SkillsOf(ticket),
                await IsChatAsync(ticket, cancellationToken)));
        else
        {
            var queued = _board.Waiting.First(q => q.Number == number);
            if (queued.Priority != ticket.Priority)
                _board.Enqueue(queued with { Priority = ticket.Priority });
        }
        await DispatchAndSaveAsync(cancellationToken);
    }

    public async Task SetOnlineAsync(string userId, bool online, CancellationToken cancellationToken = default)
    {
        _board.SetOnline(userId, online);
        var offline = new Dictionary<string, DateTimeOffset>(_state.OfflineSince);
        if (online)
            offline.Remove(userId);
        else
            offline.TryAdd(userId, time.GetUtcNow());
        _state = _state with { OfflineSince = offline };
        await DispatchAndSaveAsync(cancellationToken);
        await ScheduleOfflineReturnAsync();
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != OfflineReminder)
            return;
        var after = _state.Settings.ReturnTicketsAfterOffline;
        var now = time.GetUtcNow();
        if (after is { } threshold)
        {
            foreach (var (agent, since) in _state.OfflineSince.Where(o => now - o.Value >= threshold).ToList())
            {
                foreach (var number in _board.HeldBy(agent))
                {
                    // Only tickets nobody has started (status New) go back: an agent's work in progress stays theirs.
                    var ticket = await GrainFactory.GetGrain<ITicketGrain>(number).GetAsync();
                    if (ticket is not { Status: TicketStatus.New } || ticket.Assignee != agent)
                        continue;
                    var back = await GrainFactory.GetGrain<ITicketGrain>(number).ChangeAsync(new TicketChange { Assignee = "" }, "assignment", CancellationToken.None);
                    var chat = _board.IsChat(number);
                    _board.Forget(number);
                    _board.Enqueue(new QueuedTicket(number, back.Priority, back.CreatedAt, SkillsOf(back), chat));
                }
                logger.LogInformation("Team {Team}: {Agent} offline since {Since}; their unstarted tickets are back in the queue", Team, agent, since);
            }
        }
        await DispatchAndSaveAsync(CancellationToken.None);
        await ScheduleOfflineReturnAsync();
    }

    private static IReadOnlyList<string> SkillsOf(TicketSnapshot ticket) =>
        [.. ticket.Tags.Where(t => t.StartsWith(SkillTagPrefix, StringComparison.OrdinalIgnoreCase)).Select(t => t[SkillTagPrefix.Length..])];

    /// <summary>A web chat (its first conversation's channel): read from the store when the queue first sees the ticket,
    /// then kept with it.</summary>
    private async Task<bool> IsChatAsync(TicketSnapshot ticket, CancellationToken cancellationToken) =>
        _board.Assigned.ContainsKey(ticket.Number) || _board.IsQueued(ticket.Number)
            ? _board.IsChat(ticket.Number)
            : ticket.ConversationIds.Count > 0
              && (await crm.FindConversationAsync(ticket.ConversationIds[0], cancellationToken))?.Channel == ChannelKind.WebChat;

    private async Task ScheduleOfflineReturnAsync()
    {
        var now = time.GetUtcNow();
        var due = _state.Settings.ReturnTicketsAfterOffline is { } after
            ? _state.OfflineSince.Where(o => _board.HeldBy(o.Key).Count > 0).Select(o => o.Value + after).DefaultIfEmpty().Min()
            : default;
        if (due == default)
        {
            if (await this.GetReminder(OfflineReminder) is { } reminder)
                await this.UnregisterReminder(reminder);
            return;
        }
        var wait = due - now;
        await this.RegisterOrUpdateReminder(OfflineReminder, wait < TimeSpan.Zero ? TimeSpan.Zero : wait, options.Value.ReminderPeriod);
    }

    private async Task DispatchAndSaveAsync(CancellationToken cancellationToken)
    {
        var decisions = _board.Dispatch();
        var pending = new Dictionary<long, string>(_state.Pending);
        foreach (var (ticket, agent) in decisions)
            pending[ticket] = agent;
        await SaveAsync(pending, cancellationToken);
        await ApplyPendingAsync(cancellationToken);
    }

    private async Task ApplyPendingAsync(CancellationToken cancellationToken)
    {
        if (_state.Pending.Count == 0)
            return;
        var left = new Dictionary<long, string>(_state.Pending);
        foreach (var (number, agent) in _state.Pending)
        {
            try
            {
                var ticket = await GrainFactory.GetGrain<ITicketGrain>(number).GetAsync();
                // Someone took it, or it left the team, while the decision was on its way: theirs stands.
                if (ticket is not null && ticket.Team == Team && string.IsNullOrEmpty(ticket.Assignee)
                    && ticket.Status is not (TicketStatus.Resolved or TicketStatus.Closed))
                    await GrainFactory.GetGrain<ITicketGrain>(number).ChangeAsync(new TicketChange { Assignee = agent }, "assignment", cancellationToken);
                else if (ticket?.Assignee != agent)
                    _board.Forget(number);
                left.Remove(number);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Team {Team}: assigning ticket #{Number} to {Agent} failed; retried on the next change", Team, number, agent);
            }
        }
        await SaveAsync(left, cancellationToken);
    }

    private async Task SaveAsync(Dictionary<long, string> pending, CancellationToken cancellationToken)
    {
        var next = _state with
        {
            Waiting = [.. _board.Waiting],
            Assigned = new Dictionary<long, string>(_board.Assigned),
            Sequence = _board.Sequence,
            LastAssigned = _state.Settings.Agents.ToDictionary(a => a.UserId, a => _board.LastAssignedOf(a.UserId), StringComparer.Ordinal),
            Pending = pending,
            Chats = [.. _board.Chats],
            Paused = [.. _board.Paused],
        };
        await store.PutAsync(RoutingKinds.TeamQueue, Team, RoutingJson.Write(next), cancellationToken);
        _state = next;
    }

    private TeamQueueSnapshot Snapshot() =>
        new(Team, _board.Policy, [.. _board.Waiting], _board.OpenTickets, [.. _board.Online.Order(StringComparer.Ordinal)], _board.OpenChats);
}
