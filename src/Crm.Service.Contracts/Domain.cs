namespace Crm.Service.Contracts;

/// <summary>The kind of channel a conversation lives on; each kind has one connector.</summary>
public enum ChannelKind
{
    Api = 0,
    Email = 1,
    Telegram = 2,
    WebChat = 3,
}

/// <summary>How a customer is known on a channel.</summary>
public enum IdentityKind
{
    Email = 0,
    Phone = 1,
    Telegram = 2,
    WebChat = 3,
    /// <summary>An id that means something only inside one API channel (a bridge's own user id).</summary>
    External = 4,
}

public enum TicketStatus
{
    New = 0,
    Open = 1,
    Pending = 2,
    OnHold = 3,
    Resolved = 4,
    Closed = 5,
}

public enum TicketPriority
{
    Low = 0,
    Normal = 1,
    High = 2,
    Urgent = 3,
}

public enum MessageDirection
{
    Inbound = 0,
    Outbound = 1,
    Note = 2,
}

public enum DeliveryStatus
{
    /// <summary>Inbound messages and notes are not delivered anywhere.</summary>
    None = 0,
    Queued = 1,
    Sent = 2,
    Delivered = 3,
    Failed = 4,
}
