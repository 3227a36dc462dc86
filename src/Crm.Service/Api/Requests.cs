using Crm.Service.Contracts;

// Request bodies that are not already a contract record (ticket and profile changes bind TicketChange and
// CustomerProfileChange directly).

namespace Crm.Service.Api;

public sealed record ReplyRequest(string? Text, string? Html, Guid? ConversationId, TicketStatus? Status);

public sealed record NoteRequest(string? Text);

public sealed record MergeTicketRequest(long? Into);

public sealed record SplitTicketRequest(Guid? MessageId);

public sealed record MergeCustomerRequest(Guid? SourceCustomerId);

public sealed record DetachIdentityRequest(string? Identity);

public sealed record CreateApiKeyRequest(string? Name, string? Role);

public sealed record ChannelRequest(ChannelKind? Kind, string? Name, bool? Enabled, string? WebhookUrl, string? Secret);

public sealed record TicketPage(IReadOnlyList<TicketSnapshot> Items, int Page, int PageSize, bool HasMore);

public sealed record AuditEntry(DateTimeOffset At, string Actor, string Action, string? Field, string? OldValue, string? NewValue);

public sealed record TicketDetails(TicketSnapshot Ticket, IReadOnlyList<MessageSnapshot> Timeline, IReadOnlyList<AuditEntry> History);

public sealed record CreatedApiKey(Guid Id, string Name, string Role, string Key);
