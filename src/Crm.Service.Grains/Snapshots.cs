using Crm.Service.Contracts;
using Crm.Service.Grains.Records;

namespace Crm.Service.Grains;

/// <summary>Records to the immutable snapshots grains return: callers never see the state object itself.</summary>
public static class Snapshots
{
    public static TicketSnapshot ToSnapshot(this TicketRecord r) => new()
    {
        Number = r.Number,
        Subject = r.Subject,
        Status = r.Status,
        Priority = r.Priority,
        Team = r.Team,
        Assignee = r.Assignee,
        Tags = [.. r.Tags],
        CustomerId = r.CustomerId,
        ConversationIds = [.. r.ConversationIds],
        CreatedAt = r.CreatedAt,
        UpdatedAt = r.UpdatedAt,
        ResolvedAt = r.ResolvedAt,
        ClosedAt = r.ClosedAt,
        FollowUpOf = r.FollowUpOf,
        MergedInto = r.MergedInto,
        FirstResponseAt = r.FirstResponseAt,
        LastCustomerMessageAt = r.LastCustomerMessageAt,
        LastAgentReplyAt = r.LastAgentReplyAt,
    };

    public static MessageSnapshot ToSnapshot(this MessageRecord r, IReadOnlyList<AttachmentRecord>? attachments = null) => new()
    {
        Id = r.Id,
        ConversationId = r.ConversationId,
        TicketNumber = r.TicketNumber,
        Direction = r.Direction,
        ExternalId = r.ExternalId ?? r.OutboundExternalId,
        Author = r.Author,
        Text = r.Text,
        Html = r.Html,
        CreatedAt = r.CreatedAt,
        SentAt = r.SentAt,
        Delivery = r.Delivery,
        DeliveryError = r.DeliveryError,
        Channel = r.ChannelAccountId,
        Attachments = attachments?.Select(a => a.ToInfo()).ToList() ?? [],
        Cc = r.Cc?.Split('\n', StringSplitOptions.RemoveEmptyEntries) ?? [],
    };

    public static AttachmentInfo ToInfo(this AttachmentRecord a) => new(a.Id, a.FileName, a.ContentType, a.Length, a.Sha256);

    public static CustomerSnapshot ToSnapshot(this CustomerRecord r, IEnumerable<IdentityRecord> identities) => new()
    {
        Id = r.Id,
        Name = r.Name,
        Language = r.Language,
        Organization = r.Organization,
        Tags = [.. r.Tags],
        Notes = r.Notes,
        CustomFields = new Dictionary<string, string>(r.CustomFields),
        Identities = identities.Select(i => new IdentitySnapshot(i.Key, i.Kind, i.Value, i.LinkedAt)).ToList(),
        MergedInto = r.MergedInto,
        CreatedAt = r.CreatedAt,
    };

    public static ConversationSnapshot ToSnapshot(this ConversationRecord r) =>
        new(r.Id, r.ChannelAccountId, r.Channel, r.ThreadKey, r.CustomerId, r.CustomerIdentity, r.TicketNumber);

    public static ChannelAccountSnapshot ToSnapshot(this ChannelAccountRecord r) => new()
    {
        Id = r.Id,
        Kind = r.Kind,
        Name = r.Name,
        Enabled = r.Enabled,
        Settings = r.SettingsOrLegacy(),
        SecretSettings = [.. r.SecretSettings.Keys.Order(StringComparer.Ordinal)],
        HasSecret = r.Secret is not null,
        LastSuccessAt = r.LastSuccessAt,
        LastErrorAt = r.LastErrorAt,
        LastError = r.LastError,
        CreatedAt = r.CreatedAt,
        UpdatedAt = r.UpdatedAt,
    };
}
