using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Queries;

/// <summary>The customer's side of one conversation (web chat history, transcripts): its inbound and outbound messages
/// by the conversation's own id, so notes and the other conversations of a merged ticket never show.</summary>
internal sealed class ConversationTranscripts(IDbContextFactory<CrmDbContext> contexts) : IConversationTranscripts
{
    public async Task<IReadOnlyList<TranscriptEntry>> ReadAsync(string channelAccountId, string threadKey, int max, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var key = GrainKeys.Conversation(channelAccountId, threadKey);
        var conversationId = await db.Conversations.AsNoTracking().Where(c => c.Key == key).Select(c => (Guid?)c.Id).SingleOrDefaultAsync(cancellationToken);
        if (conversationId is null)
            return [];
        var newest = await db.Messages.AsNoTracking()
            .Where(m => m.ConversationId == conversationId && m.Direction != MessageDirection.Note)
            .OrderByDescending(m => m.CreatedAt).ThenByDescending(m => m.Id).Take(max)
            .Select(m => new TranscriptEntry(m.Id, m.Direction, m.ExternalId, m.Text, m.CreatedAt, m.Delivery, m.AttachmentCount))
            .ToListAsync(cancellationToken);
        newest.Reverse();
        return newest;
    }
}
