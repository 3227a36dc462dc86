using Crm.Service.Contracts;

namespace Crm.Service.Grains.Assignment;

/// <summary>
/// The assignment decisions of one team, pure and in memory: the queue (priority, then waiting time, then number),
/// each agent's open tickets (and which of them are web chats, and which wait with their SLA clock paused), presence
/// and when they were last given work. <see cref="Dispatch"/> hands out queued tickets to online agents with free
/// capacity (open tickets; for a chat also concurrent chats) and the needed skills until no more fit; a ticket no one
/// can take yet does not hold up the ones behind it. Least loaded compares the open tickets whose SLA clock runs.
/// </summary>
public sealed class AssignmentBoard
{
    private sealed class Agent(AgentCapacity capacity)
    {
        public AgentCapacity Capacity = capacity;
        public readonly HashSet<string> Skills = new(capacity.Skills, StringComparer.OrdinalIgnoreCase);
        public readonly HashSet<long> Open = [];
        /// <summary>Of <see cref="Open"/>: web chats (concurrent chats).</summary>
        public readonly HashSet<long> Chats = [];
        /// <summary>Of <see cref="Open"/>: pending or on hold, the SLA clock paused (not load for least loaded).</summary>
        public readonly HashSet<long> Paused = [];
        public bool Online;
        public int Running => Open.Count - Paused.Count;
        public bool HasRoomFor(QueuedTicket ticket) => Open.Count < Capacity.MaxOpenTickets
            && (!ticket.Chat || Capacity.MaxConcurrentChats is not { } chats || Chats.Count < chats);
        public long LastAssigned;
    }

    private static readonly IComparer<QueuedTicket> Order = Comparer<QueuedTicket>.Create((a, b) =>
    {
        var byPriority = b.Priority.CompareTo(a.Priority);
        if (byPriority != 0)
            return byPriority;
        var byWait = a.WaitingSince.CompareTo(b.WaitingSince);
        return byWait != 0 ? byWait : a.Number.CompareTo(b.Number);
    });

    private readonly SortedSet<QueuedTicket> _queue = new(Order);
    private readonly Dictionary<long, QueuedTicket> _queued = [];
    private readonly Dictionary<string, Agent> _agents = new(StringComparer.Ordinal);
    private readonly Dictionary<long, string> _assigned = [];
    private readonly HashSet<long> _chats = [];
    private readonly HashSet<long> _paused = [];
    private long _sequence;

    public AssignmentPolicy Policy { get; private set; } = AssignmentPolicy.Manual;

    public IEnumerable<QueuedTicket> Waiting => _queue;

    public IReadOnlyDictionary<long, string> Assigned => _assigned;

    public IEnumerable<string> Online => _agents.Where(a => a.Value.Online).Select(a => a.Key);

    public long Sequence => _sequence;

    public IReadOnlyDictionary<string, int> OpenTickets => _agents.ToDictionary(a => a.Key, a => a.Value.Open.Count, StringComparer.Ordinal);

    public IReadOnlyDictionary<string, int> OpenChats => _agents.ToDictionary(a => a.Key, a => a.Value.Chats.Count, StringComparer.Ordinal);

    /// <summary>Held tickets that are web chats.</summary>
    public IReadOnlyCollection<long> Chats => _chats;

    /// <summary>Held tickets whose SLA clock is paused (pending, on hold).</summary>
    public IReadOnlyCollection<long> Paused => _paused;

    public bool IsChat(long number) => _chats.Contains(number) || (_queued.TryGetValue(number, out var queued) && queued.Chat);

    public long LastAssignedOf(string userId) => _agents.TryGetValue(userId, out var agent) ? agent.LastAssigned : 0;

    /// <summary>Sets the policy and the agents; agents no longer listed keep their tickets but get no new ones.</summary>
    public void Configure(TeamAssignmentSettings settings)
    {
        Policy = settings.Policy;
        var wanted = settings.Agents.ToDictionary(a => a.UserId, StringComparer.Ordinal);
        foreach (var gone in _agents.Keys.Where(id => !wanted.ContainsKey(id)).ToList())
            _agents.Remove(gone);
        foreach (var (id, capacity) in wanted)
        {
            if (_agents.TryGetValue(id, out var agent))
            {
                var replaced = new Agent(capacity) { Online = agent.Online, LastAssigned = agent.LastAssigned };
                replaced.Open.UnionWith(agent.Open);
                replaced.Chats.UnionWith(agent.Chats);
                replaced.Paused.UnionWith(agent.Paused);
                _agents[id] = replaced;
            }
            else
                _agents[id] = new Agent(capacity);
        }
        foreach (var (ticket, agent) in _assigned)
            if (_agents.TryGetValue(agent, out var known))
                Count(known, ticket);
    }

    private void Count(Agent agent, long ticket)
    {
        agent.Open.Add(ticket);
        if (_chats.Contains(ticket))
            agent.Chats.Add(ticket);
        if (_paused.Contains(ticket))
            agent.Paused.Add(ticket);
    }

    /// <summary>Restores what was persisted: the sequence and when each agent was last given work.</summary>
    public void Restore(long sequence, IReadOnlyDictionary<string, long> lastAssigned)
    {
        _sequence = sequence;
        foreach (var (id, last) in lastAssigned)
            if (_agents.TryGetValue(id, out var agent))
                agent.LastAssigned = last;
    }

    public bool IsQueued(long number) => _queued.ContainsKey(number);

    public void Enqueue(QueuedTicket ticket)
    {
        if (_queued.TryGetValue(ticket.Number, out var existing))
        {
            if (existing == ticket)
                return;
            _queue.Remove(existing);
        }
        Release(ticket.Number);
        _queued[ticket.Number] = ticket;
        _queue.Add(ticket);
    }

    /// <summary>The ticket left the queue and nobody of this team holds it any more (done, or moved away).</summary>
    public void Forget(long number)
    {
        if (_queued.Remove(number, out var queued))
            _queue.Remove(queued);
        Release(number);
    }

    /// <summary>Someone holds the ticket (assigned by hand, or by an earlier decision): it counts against their capacity
    /// (a chat also against their concurrent chats); a paused one (pending, on hold) is not load for least loaded.</summary>
    public void Hold(long number, string userId, bool chat = false, bool paused = false)
    {
        if (_queued.Remove(number, out var queued))
            _queue.Remove(queued);
        if (_assigned.TryGetValue(number, out var holder) && holder == userId && _chats.Contains(number) == chat && _paused.Contains(number) == paused)
            return;
        Release(number);
        _assigned[number] = userId;
        if (chat)
            _chats.Add(number);
        if (paused)
            _paused.Add(number);
        if (_agents.TryGetValue(userId, out var agent))
            Count(agent, number);
    }

    private void Release(long number)
    {
        if (_assigned.Remove(number, out var holder) && _agents.TryGetValue(holder, out var agent))
        {
            agent.Open.Remove(number);
            agent.Chats.Remove(number);
            agent.Paused.Remove(number);
        }
        _chats.Remove(number);
        _paused.Remove(number);
    }

    public void SetOnline(string userId, bool online)
    {
        if (_agents.TryGetValue(userId, out var agent))
            agent.Online = online;
    }

    /// <summary>Tickets this agent holds (for putting them back when they stay offline).</summary>
    public IReadOnlyList<long> HeldBy(string userId) => _assigned.Where(a => a.Value == userId).Select(a => a.Key).ToList();

    /// <summary>Assigns what can be assigned now; returns the decisions in order.</summary>
    public IReadOnlyList<(long Ticket, string Agent)> Dispatch()
    {
        var decisions = new List<(long, string)>();
        if (Policy == AssignmentPolicy.Manual || _queue.Count == 0)
            return decisions;
        var available = _agents.Values.Where(a => a.Online && a.Open.Count < a.Capacity.MaxOpenTickets).ToList();
        if (available.Count == 0)
            return decisions;
        foreach (var ticket in _queue.ToList())
        {
            Agent? best = null;
            foreach (var agent in available)
            {
                if (!agent.HasRoomFor(ticket) || !ticket.Skills.All(agent.Skills.Contains))
                    continue;
                if (best is null || Better(agent, best))
                    best = agent;
            }
            if (best is null)
                continue;
            best.LastAssigned = ++_sequence;
            Hold(ticket.Number, best.Capacity.UserId, ticket.Chat);
            decisions.Add((ticket.Number, best.Capacity.UserId));
            if (available.All(a => a.Open.Count >= a.Capacity.MaxOpenTickets))
                break;
        }
        return decisions;
    }

    private bool Better(Agent candidate, Agent best) => Policy switch
    {
        AssignmentPolicy.LeastLoaded => candidate.Running < best.Running
            || (candidate.Running == best.Running && candidate.LastAssigned < best.LastAssigned),
        _ => candidate.LastAssigned < best.LastAssigned,
    };
}
