using System.Threading.Channels;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.AgentConsole;

/// <summary>
/// Passes an agent's typing and reading on a ticket (from the agents' hub, for a ticket the agent may see) to the live
/// channel of the ticket's conversation: the conversation of the customer's latest message, when its channel has an
/// <see cref="IAgentActivitySink"/> (web chat). Opening the ticket marks the customer's messages read up to the latest.
/// <para>The hub only posts a signal here and returns (review KW12): SignalR runs one invocation of a connection at a
/// time, so awaiting a slow or unreachable session grain would stall every other call of that agent. Review WV5: one
/// serial queue for the node let one ticket with an unreachable session grain (an agent typing every 3 s, each signal
/// waiting its 10 s) hold up every other agent's signals and then drop them. So signals are kept per ticket, only the
/// latest of each kind (a read mark is "up to the latest" when relayed, typing is a flag), each ticket has at most one
/// relay under way, and up to <see cref="Workers"/> tickets are relayed at once: a stalled ticket holds one place and
/// its own signals only. Typing older than <see cref="TicketViewers.TypingFor"/> when its turn comes is dropped (the
/// visitor would see it after it ended). A failure is logged and swallowed: these signals are a courtesy and must
/// never break the console.</para>
/// <para>Review WC2: a ticket whose relay ran into its bound is held back for <see cref="HoldBack"/> before its next
/// relay (its signals keep coalescing meanwhile). Otherwise an agent typing every 3 s gave a stalled ticket its place
/// back at once, and when a silo died with 8 or more such chats, every place stayed taken by stalled tickets.</para>
/// </summary>
public sealed class AgentActivityRelay(IDbContextFactory<CrmDbContext> contexts, IEnumerable<IAgentActivitySink> sinks, TimeProvider time, ILogger<AgentActivityRelay> logger) : BackgroundService
{
    /// <summary>Tickets with a signal waiting, at most; a signal for another ticket past it is dropped.</summary>
    internal const int QueueSize = 1000;

    /// <summary>Tickets relayed at once.</summary>
    internal const int Workers = 8;

    /// <summary>How long one relay may take (a test may shorten or lengthen it).</summary>
    internal TimeSpan SignalTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a ticket whose relay timed out waits before its next relay (a test may change it).</summary>
    internal TimeSpan HoldBack { get; set; } = TimeSpan.FromSeconds(30);

    private sealed class Pending
    {
        public bool Read;
        public DateTimeOffset? TypingAt;
    }

    private readonly Dictionary<ChannelKind, IAgentActivitySink> _sinks = sinks.GroupBy(s => s.Channel).ToDictionary(g => g.Key, g => g.First());
    private readonly Lock _lock = new();
    private readonly Dictionary<long, Pending> _pending = [];
    private readonly HashSet<long> _busy = [];
    // Tickets whose pending signals may be taken (never one under way); each ticket is in it at most once.
    private readonly Channel<long> _ready = Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim _places = new(Workers, Workers);

    /// <summary>Keeps "an agent is typing" for the ticket's live customer; never waits.</summary>
    public void Typing(long ticket) => Post(ticket, read: false);

    /// <summary>Keeps "read up to the latest" for the ticket's live customer; never waits.</summary>
    public void Read(long ticket) => Post(ticket, read: true);

    private void Post(long ticket, bool read)
    {
        if (_sinks.Count == 0)
            return;
        lock (_lock)
        {
            if (!_pending.TryGetValue(ticket, out var pending))
            {
                if (_pending.Count >= QueueSize)
                {
                    logger.LogDebug("Agent activity on ticket {Ticket} dropped: {Count} tickets are waiting", ticket, QueueSize);
                    return;
                }
                _pending[ticket] = pending = new Pending();
                // One under way takes up the new signals when it ends.
                if (!_busy.Contains(ticket))
                    _ready.Writer.TryWrite(ticket);
            }
            if (read)
                pending.Read = true;
            else
                pending.TypingAt = time.GetUtcNow();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var ticket in _ready.Reader.ReadAllAsync(stoppingToken))
            {
                await _places.WaitAsync(stoppingToken);
                Pending? pending;
                lock (_lock)
                {
                    if (_pending.Remove(ticket, out pending))
                        _busy.Add(ticket);
                }
                if (pending is null)
                {
                    _places.Release();
                    continue;
                }
                _ = RunAsync(ticket, pending, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task RunAsync(long ticket, Pending pending, CancellationToken stoppingToken)
    {
        var timedOut = false;
        try
        {
            var typing = pending.TypingAt is { } at && time.GetUtcNow() - at < TicketViewers.TypingFor;
            if (pending.Read || typing)
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                timeout.CancelAfter(SignalTimeout);
                await RelayAsync(ticket, typing, pending.Read, timeout.Token);
                timedOut = timeout.IsCancellationRequested && !stoppingToken.IsCancellationRequested;
            }
        }
        finally
        {
            // A timed-out ticket stays busy (new signals only coalesce) but gives its place back now.
            if (!timedOut)
                Done(ticket);
            _places.Release();
        }
        if (timedOut)
        {
            try
            {
                await Task.Delay(HoldBack, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            Done(ticket);
        }
    }

    private void Done(long ticket)
    {
        lock (_lock)
        {
            _busy.Remove(ticket);
            if (_pending.ContainsKey(ticket))
                _ready.Writer.TryWrite(ticket);
        }
    }

    private async Task RelayAsync(long ticket, bool typing, bool read, CancellationToken cancellationToken)
    {
        try
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            var latest = await db.Messages.AsNoTracking()
                .Where(m => m.TicketNumber == ticket && m.Direction == MessageDirection.Inbound && m.ConversationId != null)
                .OrderByDescending(m => m.CreatedAt).ThenByDescending(m => m.Id)
                .Select(m => new { m.Id, m.ConversationId })
                .FirstOrDefaultAsync(cancellationToken);
            if (latest is null)
                return;
            var conversation = await db.Conversations.AsNoTracking().Where(c => c.Id == latest.ConversationId)
                .Select(c => new { c.Channel, c.ChannelAccountId, c.ThreadKey }).SingleOrDefaultAsync(cancellationToken);
            if (conversation is null || !_sinks.TryGetValue(conversation.Channel, out var sink))
                return;
            await sink.AgentActivityAsync(conversation.ChannelAccountId, conversation.ThreadKey, typing ? true : null, read ? latest.Id : null, cancellationToken);
        }
        catch (Exception ex)
        {
            logger.LogDebug(ex, "Agent activity on ticket {Ticket} did not reach its channel", ticket);
        }
    }
}
