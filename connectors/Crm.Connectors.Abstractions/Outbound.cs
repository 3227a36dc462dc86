using Crm.Service.Contracts;

namespace Crm.Connectors.Abstractions;

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
    /// <summary>For mail that is not part of a ticket (a web chat verification code or transcript): the subject to use
    /// instead of the ticket's. Null for replies.</summary>
    public string? Subject { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required int Attempt { get; init; }
    /// <summary>Files to send with the text. The outbox sends none yet (agent replies carry no files); connectors that
    /// can send files (Telegram) already take them.</summary>
    public IReadOnlyList<OutboundAttachment> Attachments { get; init; } = [];
    /// <summary>Email only: addresses the agent copies in (Cc), besides the customer.</summary>
    public IReadOnlyList<string> Cc { get; init; } = [];

    /// <summary>For a sender that sends a message in several parts (Telegram): the parts earlier attempts confirmed, as
    /// it reported them through <see cref="RecordSentPartsAsync"/>; null at first. The sender resumes after them.</summary>
    public string? SentParts { get; init; }

    /// <summary>Stores what a multi-part sender confirmed so far with the outbox row, durably, before it sends the next
    /// part: a retry after a restart, or on another node, then sends only the rest. Not cancelled by the stop. Null
    /// when the caller keeps no progress (the sender then remembers it on this node only).</summary>
    /// <remarks>It also lifts the outbox's "in flight" mark: nothing is on its way until <see cref="MarkPartInFlightAsync"/>
    /// says so again, so a kill between the two resumes after the stored parts (review EO1).</remarks>
    public Func<string, Task>? RecordSentPartsAsync { get; init; }

    /// <summary>Stores, durably, that part <c>part</c> of <c>parts</c> (1-based) is about to go: called right before each
    /// request of a message in several parts. A row found so after a kill is "Not confirmed: k of n parts sent" (the part
    /// in flight may have arrived), never resent; a row found between a <see cref="RecordSentPartsAsync"/> and this
    /// resumes after the stored parts (review EO1). Not cancelled by the stop; null when the caller keeps no progress.</summary>
    public Func<int, int, Task>? MarkPartInFlightAsync { get; init; }
}

/// <summary>A file of an outbound message.</summary>
public sealed record OutboundAttachment(string FileName, string ContentType, byte[] Content);

/// <summary>What a send came to. <see cref="Error"/> is technical (the server's words): it goes to the logs and the
/// admin view, never to agents.</summary>
public sealed record OutboundResult(bool Success, string? Error = null, bool Permanent = false, string? ExternalId = null)
{
    public static OutboundResult Sent(string? externalId = null) => new(true, ExternalId: externalId);
    public static OutboundResult Retry(string error) => new(false, error);
    public static OutboundResult Fail(string error) => new(false, error, Permanent: true);

    /// <summary>The outcome is unknown: the whole message reached the server, but its acceptance never came back (a
    /// timeout or cut connection while the server checked it). Not retried, since the customer may have it already; the
    /// agent is told to check before resending.</summary>
    public static OutboundResult Unknown(string error, string agentReason) => new(false, error, Permanent: true) { Ambiguous = true, AgentReason = agentReason };

    /// <summary>See <see cref="Unknown"/>.</summary>
    public bool Ambiguous { get; init; }

    /// <summary>For a final failure: what it means for the agent, in plain words chosen by the connector from a fixed
    /// set (never the server's text), e.g. "the customer blocked the bot"; shown on the message instead of the generic
    /// "delivery failed".</summary>
    public string? AgentReason { get; init; }

    /// <summary>The channel's server answered and refused this one message (the customer blocked the bot, a file is too
    /// large for it): the channel itself works, so this is no channel error and the channel stays "connected"
    /// (review CT12). The failure shows on the message.</summary>
    public bool RefusedByRecipient { get; init; }
}

/// <summary>Sends outbound messages of one channel kind. Connectors implement it; the outbox dispatcher calls it.</summary>
public interface IOutboundSender
{
    ChannelKind Channel { get; }

    /// <summary>True when a second send reaches the customer twice (email, Telegram: no receiver-side dedupe). The outbox
    /// then records "in flight" before the send, and a row found in flight after a stop or crash is "not confirmed",
    /// never re-sent on its own. False (webhooks: receivers dedupe on the message id; web chat) keeps at-least-once.</summary>
    bool ResendDuplicates => false;

    /// <summary>True when the sender marks each request in flight itself (<see cref="OutboundDelivery.MarkPartInFlightAsync"/>,
    /// a single part too) right before it goes: the outbox then commits the attempt without its own in-flight mark, so
    /// a kill while the sender reads files or finds the chat, before any request, resumes (review RC3).</summary>
    bool MarksOwnParts => false;

    Task<OutboundResult> SendAsync(OutboundDelivery delivery, CancellationToken cancellationToken = default);
}
