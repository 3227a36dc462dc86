using Crm.Service.Contracts;

namespace Crm.Connectors.Abstractions;

/// <summary>One message of a conversation as its customer may see it: never a note, never another conversation's.</summary>
public sealed record TranscriptEntry(Guid Id, MessageDirection Direction, string? ExternalId, string? Text, DateTimeOffset CreatedAt, DeliveryStatus Delivery, int AttachmentCount);

/// <summary>
/// The customer's side of one conversation, read from the store (for a web chat visitor who returns, or a transcript
/// by email). Only inbound and outbound messages whose conversation is exactly this one: internal notes and the other
/// conversations of a merged ticket are never part of it.
/// </summary>
public interface IConversationTranscripts
{
    /// <summary>The newest <paramref name="max"/> messages of the conversation, oldest first; empty when it has none yet.</summary>
    Task<IReadOnlyList<TranscriptEntry>> ReadAsync(string channelAccountId, string threadKey, int max, CancellationToken cancellationToken = default);
}
