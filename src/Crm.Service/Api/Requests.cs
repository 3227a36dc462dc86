using System.Text.Json.Nodes;
using Crm.Service.Contracts;
using Crm.Service.Grains;

// HTTP request bodies. They are the public API's shapes and are mapped to grain contracts in the handlers, so a
// change to a grain contract never changes what clients send. Responses are the view types of
// Crm.Service.Infrastructure.Queries. Element types say what a valid body holds, but JSON can still put a null in
// any list: CheckLimits (run by RequestLimitsFilter) refuses that and every over-long field before a handler runs.

namespace Crm.Service.Api;

/// <summary>An agent's reply; <see cref="Cc"/> (email tickets only) holds addresses, each entry one or several
/// comma-separated. Files go in the multipart form of the same endpoint.</summary>
public sealed record ReplyRequest(string? Text, string? Html, Guid? ConversationId, TicketStatus? Status, IReadOnlyList<string>? Cc = null) : ILimitedRequest
{
    public void CheckLimits()
    {
        InputLimits.CheckLength(Text, InputLimits.MaxMessageTextLength, "text");
        InputLimits.CheckLength(Html, InputLimits.MaxMessageTextLength, "html");
        if (Cc is { Count: > 100 })
            throw new DomainException(DomainErrorKind.TooLarge, "At most 100 cc entries.", "cc");
        foreach (var entry in Cc ?? [])
            InputLimits.CheckLength(entry, InputLimits.MaxEmailAddressLength * 20, "cc");
    }
}

public sealed record NoteRequest(string? Text) : ILimitedRequest
{
    public void CheckLimits() => InputLimits.CheckNote(Text);
}

/// <summary>A partial change to a ticket; absent (null) fields are left as they are, "" clears assignee or team.</summary>
public sealed record ChangeTicketRequest(
    TicketStatus? Status, TicketPriority? Priority, IReadOnlyList<string>? Tags, string? Assignee, string? Team, string? Subject)
    : ILimitedRequest
{
    public void CheckLimits() => InputLimits.CheckTicketChange(ToContract());

    public TicketChange ToContract() => new()
    {
        Status = Status,
        Priority = Priority,
        Tags = Tags,
        Assignee = Assignee,
        Team = Team,
        Subject = Subject,
    };
}

/// <summary>A partial profile change; absent (null) fields are left as they are; a custom field set to null is removed.</summary>
public sealed record ChangeCustomerRequest(
    string? Name, string? Language, string? Organization, IReadOnlyList<string>? Tags, string? Notes,
    IReadOnlyDictionary<string, string?>? CustomFields) : ILimitedRequest
{
    /// <summary>The request on its own; the count of custom fields after the change is the grain's to check.</summary>
    public void CheckLimits()
    {
        InputLimits.CheckLength(Name, InputLimits.MaxNameLength, "name");
        InputLimits.CheckLength(Language, InputLimits.MaxLanguageLength, "language");
        InputLimits.CheckLength(Organization, InputLimits.MaxNameLength, "organization");
        InputLimits.CheckLength(Notes, InputLimits.MaxNotesLength, "notes");
        if (Tags is not null)
            InputLimits.CheckTags(Tags);
        if (CustomFields is not null)
            InputLimits.CheckCustomFields(CustomFields);
    }

    public CustomerProfileChange ToContract() => new()
    {
        Name = Name,
        Language = Language,
        Organization = Organization,
        Tags = Tags,
        Notes = Notes,
        CustomFields = CustomFields,
    };
}

public sealed record MergeTicketRequest(long? Into);

public sealed record SplitTicketRequest(Guid? MessageId);

public sealed record MergeCustomerRequest(Guid? SourceCustomerId);

public sealed record DetachIdentityRequest(string? Identity);

public sealed record CreateApiKeyRequest(string? Name, string? Role);

/// <summary>PUT /api/v1/admin/channels/{id}: <see cref="Settings"/> is the kind's typed settings; <see cref="WebhookUrl"/>
/// is the older top-level spelling of the API kind's webhook URL; <see cref="Secret"/> sets the signing secret (null keeps
/// it, or generates one for a new channel).</summary>
public sealed record ChannelRequest(ChannelKind? Kind, string? Name, bool? Enabled, JsonObject? Settings, string? WebhookUrl, string? Secret);

public sealed record CreatedApiKey(Guid Id, string Name, string Role, string Key);
