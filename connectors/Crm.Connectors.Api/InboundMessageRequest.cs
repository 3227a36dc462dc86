namespace Crm.Connectors.Api;

// The JSON a bridge posts. Every property is optional to the parser so that validation, not the parser,
// reports a missing field by its name; wrong types are reported by the parser with their JSON path.

internal sealed class InboundMessageRequest
{
    /// <summary>The bridge's id of this message; redelivery with the same id is answered with the stored message.</summary>
    public string? MessageId { get; set; }
    /// <summary>The bridge's conversation; defaults to the sender's id (one conversation per contact).</summary>
    public string? ThreadKey { get; set; }
    public SenderRequest? Sender { get; set; }
    public DateTimeOffset? SentAt { get; set; }
    public string? Subject { get; set; }
    public string? Text { get; set; }
    public string? Html { get; set; }
    public List<AttachmentRequest?>? Attachments { get; set; }
}

internal sealed class SenderRequest
{
    public string? Id { get; set; }
    /// <summary>"external" (default: an id meaningful only to this bridge), "phone" or "email".</summary>
    public string? Kind { get; set; }
    public string? Name { get; set; }
}

internal sealed class AttachmentRequest
{
    public string? FileName { get; set; }
    public string? ContentType { get; set; }
    public string? ContentBase64 { get; set; }
}

internal sealed class DeliveryReceiptRequest
{
    /// <summary>Our message id, as sent in the webhook.</summary>
    public Guid? MessageId { get; set; }
    /// <summary>"sent", "delivered" or "failed".</summary>
    public string? Status { get; set; }
    public string? Reason { get; set; }
    /// <summary>The bridge's own id of the delivered message.</summary>
    public string? ExternalId { get; set; }
}
