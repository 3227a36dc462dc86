namespace Crm.Service.Contracts;

[GenerateSerializer, Immutable, Alias("crm.ChannelAccountSnapshot")]
public sealed record ChannelAccountSnapshot(
    [property: Id(0)] string Id,
    [property: Id(1)] ChannelKind Kind,
    [property: Id(2)] string Name,
    [property: Id(3)] bool Enabled,
    [property: Id(4)] string? WebhookUrl,
    [property: Id(5)] string? Secret);

[GenerateSerializer, Immutable, Alias("crm.ChannelAccountSettings")]
public sealed record ChannelAccountSettings
{
    [Id(0)] public required ChannelKind Kind { get; init; }
    [Id(1)] public required string Name { get; init; }
    [Id(2)] public bool Enabled { get; init; } = true;
    [Id(3)] public string? WebhookUrl { get; init; }
    /// <summary>Null keeps the current secret.</summary>
    [Id(4)] public string? Secret { get; init; }
}

[GenerateSerializer, Immutable, Alias("crm.DeliveryUpdate")]
public sealed record DeliveryUpdate(
    [property: Id(0)] DeliveryStatus Status,
    [property: Id(1)] string? Reason,
    [property: Id(2)] string? ExternalId = null,
    /// <summary>When a channel reports, the account it reports from: a receipt for another channel's message is refused.</summary>
    [property: Id(3)] string? ChannelAccountId = null);

/// <summary>An outbound message handed to its channel's sender by the outbox dispatcher.</summary>
public sealed record OutboundDelivery
{
    public required Guid MessageId { get; init; }
    public required long TicketNumber { get; init; }
    public required string ChannelAccountId { get; init; }
    public required string ThreadKey { get; init; }
    /// <summary>The customer's identity key on this channel (see <see cref="GrainKeys.Identity"/>).</summary>
    public required string Recipient { get; init; }
    public required string Author { get; init; }
    public string? Text { get; init; }
    public string? Html { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required int Attempt { get; init; }
}

public sealed record OutboundResult(bool Success, string? Error = null, bool Permanent = false, string? ExternalId = null)
{
    public static OutboundResult Sent(string? externalId = null) => new(true, ExternalId: externalId);
    public static OutboundResult Retry(string error) => new(false, error);
    public static OutboundResult Fail(string error) => new(false, error, Permanent: true);
}

/// <summary>Sends outbound messages of one channel kind. Connectors implement it; the outbox dispatcher calls it.</summary>
public interface IOutboundSender
{
    ChannelKind Channel { get; }

    Task<OutboundResult> SendAsync(OutboundDelivery delivery, CancellationToken cancellationToken = default);
}
