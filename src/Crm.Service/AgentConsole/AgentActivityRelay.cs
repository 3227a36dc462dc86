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
/// The hub only posts a signal here and returns (review KW12): SignalR runs one invocation of a connection at a time, so
/// awaiting a slow or unreachable session grain would stall every other call of that agent. Signals go through a small
/// bounded queue, one at a time and in order, each bounded by <see cref="SignalTimeout"/>; when the queue is full the new
/// signal is dropped. A failure is logged and swallowed: these signals are a courtesy and must never break the console.
/// </summary>
public sealed class AgentActivityRelay(IDbContextFactory<CrmDbContext> contexts, IEnumerable<IAgentActivitySink> sinks, ILogger<AgentActivityRelay> logger) : BackgroundService
{
    internal const int QueueSize = 1000;
    internal static readonly TimeSpan SignalTimeout = TimeSpan.FromSeconds(10);

    private readonly Dictionary<ChannelKind, IAgentActivitySink> _sinks = sinks.GroupBy(s => s.Channel).ToDictionary(g => g.Key, g => g.First());
    private readonly Channel<(long Ticket, bool Read)> _queue = Channel.CreateBounded<(long, bool)>(
        new BoundedChannelOptions(QueueSize) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    /// <summary>Queues "an agent is typing" for the ticket's live customer; never waits.</summary>
    public void Typing(long ticket) => Post(ticket, read: false);

    /// <summary>Queues "read up to the latest" for the ticket's live customer; never waits.</summary>
    public void Read(long ticket) => Post(ticket, read: true);

    private void Post(long ticket, bool read)
    {
        if (_sinks.Count > 0 && !_queue.Writer.TryWrite((ticket, read)))
            logger.LogDebug("Agent activity on ticket {Ticket} dropped: the relay queue is full", ticket);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (ticket, read) in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                timeout.CancelAfter(SignalTimeout);
                await RelayAsync(ticket, read, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task RelayAsync(long ticket, bool read, CancellationToken cancellationToken)
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
            await sink.AgentActivityAsync(conversation.ChannelAccountId, conversation.ThreadKey, read ? null : true, read ? latest.Id : null, cancellationToken);
        }
        catch (Exception ex)
        {
            logger.LogDebug(ex, "Agent activity on ticket {Ticket} did not reach its channel", ticket);
        }
    }
}
