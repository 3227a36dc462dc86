using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.AgentConsole;

/// <summary>
/// Passes an agent's typing and reading on a ticket (from the agents' hub, for a ticket the agent may see) to the live
/// channel of the ticket's conversation: the conversation of the customer's latest message, when its channel has an
/// <see cref="IAgentActivitySink"/> (web chat). Opening the ticket marks the customer's messages read up to the latest.
/// A failure is logged and swallowed: these signals are a courtesy and must never break the console.
/// </summary>
public sealed class AgentActivityRelay(IDbContextFactory<CrmDbContext> contexts, IEnumerable<IAgentActivitySink> sinks, ILogger<AgentActivityRelay> logger)
{
    private readonly Dictionary<ChannelKind, IAgentActivitySink> _sinks = sinks.GroupBy(s => s.Channel).ToDictionary(g => g.Key, g => g.First());

    public Task TypingAsync(long ticket, CancellationToken cancellationToken) => RelayAsync(ticket, read: false, cancellationToken);

    public Task ReadAsync(long ticket, CancellationToken cancellationToken) => RelayAsync(ticket, read: true, cancellationToken);

    private async Task RelayAsync(long ticket, bool read, CancellationToken cancellationToken)
    {
        if (_sinks.Count == 0)
            return;
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
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogDebug(ex, "Agent activity on ticket {Ticket} did not reach its channel", ticket);
        }
    }
}
