using Orleans.Concurrency;

namespace Crm.Service.Contracts;

/// <summary>One channel identity (an email address, a phone number, a Telegram user…), keyed by <see cref="GrainKeys.Identity"/>.
/// Non-reentrant, so two concurrent first messages from one new address resolve to one customer.</summary>
public interface IIdentityGrain : IGrainWithStringKey
{
    /// <summary>The customer this identity belongs to, creating the customer on first contact.</summary>
    Task<Guid> ResolveCustomerAsync(string? displayName, CancellationToken cancellationToken = default);

    [ReadOnly]
    Task<Guid?> GetCustomerAsync();

    /// <summary>Links this identity to <paramref name="customerId"/> only when no customer holds it yet, decided inside
    /// the grain (a check by the caller followed by <see cref="LinkToCustomerAsync"/> would race a concurrent link and
    /// move the identity away from its holder). Returns the customer that holds it afterwards.</summary>
    Task<Guid> LinkIfFreeAsync(Guid customerId, string actor, CancellationToken cancellationToken = default);

    /// <summary>Moves this identity to another customer (a customer merge).</summary>
    Task LinkToCustomerAsync(Guid customerId, string actor, CancellationToken cancellationToken = default);

    /// <summary>Detaches this identity from its customer into a new customer of its own; returns the new customer.</summary>
    Task<Guid> DetachAsync(string actor, CancellationToken cancellationToken = default);
}

public interface ICustomerGrain : IGrainWithGuidKey
{
    [AlwaysInterleave]
    Task<CustomerSnapshot?> GetAsync();

    Task<CustomerSnapshot> UpdateProfileAsync(CustomerProfileChange change, string actor, CancellationToken cancellationToken = default);

    /// <summary>Moves the source customer's identities, conversations and tickets here; the source is marked merged.
    /// Call it through <see cref="IMergeCoordinatorGrain"/>.</summary>
    [ResponseTimeout(IMergeCoordinatorGrain.MergeTimeout)]
    Task<CustomerSnapshot> MergeFromAsync(Guid sourceCustomerId, string actor, CancellationToken cancellationToken = default);

    /// <summary>Called on the source of a merge: marks it merged and returns what must move.</summary>
    Task<CustomerSnapshot> MarkMergedIntoAsync(Guid targetCustomerId, string actor, CancellationToken cancellationToken = default);

    /// <summary>Called by identity grains after they moved or detached, so the profile's identity list stays current.
    /// One-way: the identity does not wait, so an identity and a customer can never wait on each other.</summary>
    [OneWay]
    Task IdentityChangedAsync();
}

/// <summary>One thread on one channel account with one customer, keyed by <see cref="GrainKeys.Conversation"/>.</summary>
public interface IConversationGrain : IGrainWithStringKey
{
    /// <summary>Stores an inbound message durably (deduplicated on the channel's message id) and routes it to a ticket.</summary>
    Task<IngestResult> ReceiveAsync(InboundMessage message, CancellationToken cancellationToken = default);

    [ReadOnly]
    Task<ConversationSnapshot?> GetAsync();
}

/// <summary>A ticket, keyed by its human number (#10001 up).</summary>
public interface ITicketGrain : IGrainWithIntegerKey
{
    Task<TicketSnapshot> OpenAsync(TicketOpening opening, CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes the ticket the conversation just opened when the message it was opened for turned out to be stored
    /// already (a copy on another thread at the same instant), so no empty ticket is left in the queues. The
    /// conversation's row goes too, or, given <paramref name="restorePointerTo"/> (it existed before), points back at
    /// that ticket. Does nothing (false) once the ticket holds a message or anyone or anything else has touched it.
    /// </summary>
    Task<bool> WithdrawIfEmptyAsync(Guid conversationId, long? restorePointerTo, CancellationToken cancellationToken = default);

    /// <summary>A customer message arrived on one of this ticket's conversations (already stored).</summary>
    Task<InboundRouting> OnInboundMessageAsync(InboundNotice notice, CancellationToken cancellationToken = default);

    /// <summary>Interleaves with every other call, so a read never waits behind (or deadlocks with) a running change;
    /// it sees the state of the last commit.</summary>
    [AlwaysInterleave]
    Task<TicketSnapshot?> GetAsync();

    Task<MessageSnapshot> ReplyAsync(AgentReply reply, CancellationToken cancellationToken = default);

    /// <summary>Adds an internal note. With <paramref name="requestId"/> (scoped to the caller) a second call with the
    /// same id and text returns the first note instead of adding another; the same id with another text is refused.</summary>
    Task<MessageSnapshot> AddNoteAsync(string actor, string text, string? requestId = null, CancellationToken cancellationToken = default);

    Task<TicketSnapshot> ChangeAsync(TicketChange change, string actor, CancellationToken cancellationToken = default);

    /// <summary>Records a phone call an agent logged, as a message on the phone channel (no conversation, nothing sent).
    /// Idempotent on <paramref name="requestId"/> like <see cref="AddNoteAsync"/>.</summary>
    Task<MessageSnapshot> LogCallAsync(PhoneCall call, string actor, string? requestId = null, CancellationToken cancellationToken = default);

    /// <summary>Merges this ticket into <paramref name="targetNumber"/>: its messages and conversations move, this one closes as merged.
    /// Call it through <see cref="IMergeCoordinatorGrain"/>, which serializes merges so two opposite ones cannot wait on each other.</summary>
    [ResponseTimeout(IMergeCoordinatorGrain.MergeTimeout)]
    Task<TicketSnapshot> MergeIntoAsync(long targetNumber, string actor, CancellationToken cancellationToken = default);

    /// <summary>Called on the target of a merge, after the source moved its content.</summary>
    Task AbsorbAsync(long sourceNumber, IReadOnlyList<Guid> conversationIds, string actor, CancellationToken cancellationToken = default);

    /// <summary>Moves one message of this ticket into a new ticket; returns the new ticket.</summary>
    Task<TicketSnapshot> SplitAsync(Guid messageId, string actor, CancellationToken cancellationToken = default);

    Task ChangeCustomerAsync(Guid customerId, string actor, CancellationToken cancellationToken = default);
}

/// <summary>The single writer of one outbound message's delivery status, keyed by the message id.
/// The outbox dispatcher and channel receipts report here; status only moves forward.</summary>
public interface IMessageDeliveryGrain : IGrainWithGuidKey
{
    Task UpdateAsync(DeliveryUpdate update, CancellationToken cancellationToken = default);
}

/// <summary>A channel account (an API bridge, a mailbox, a bot), keyed by its id.</summary>
public interface IChannelAccountGrain : IGrainWithStringKey
{
    [ReadOnly]
    Task<ChannelAccountSnapshot?> GetAsync();

    /// <summary>Creates or changes the account; the answer carries the secret only when one was generated for a new account.</summary>
    Task<ChannelAccountConfigured> ConfigureAsync(ChannelAccountSettings settings, CancellationToken cancellationToken = default);

    /// <summary>Replaces the channel secret with a new random one and returns it (shown once).</summary>
    Task<ChannelAccountConfigured> RotateSecretAsync(CancellationToken cancellationToken = default);

    /// <summary>Records a success or an error of talking to the account's server (see IChannelHealth).</summary>
    Task ReportHealthAsync(ChannelHealthReport report, CancellationToken cancellationToken = default);

    /// <summary>Encrypts secrets an older database stored in plain text; false when there were none.</summary>
    Task<bool> ProtectStoredSecretsAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// Serializes merges. A merge calls from one grain into another (source → target), so two opposite merges at once
/// (A into B, B into A) would each hold one grain while waiting for the other. Through one coordinator per kind
/// they run one after the other, and the second finds its target already merged and is refused: no wait, no cycle.
/// Keys: <see cref="Tickets"/> and <see cref="Customers"/>. Merges are rare, so one activation each is plenty.
/// </summary>
public interface IMergeCoordinatorGrain : IGrainWithStringKey
{
    const string Tickets = "tickets";
    const string Customers = "customers";
    const string MergeTimeout = "00:30:00";

    // A merge touches every ticket (or message) it moves and may outlast the default 30 s call timeout; a timed-out
    // caller would leave the merge running while the coordinator took the next one, so merges get a long timeout.
    [ResponseTimeout(MergeTimeout)]
    Task<TicketSnapshot> MergeTicketsAsync(long sourceNumber, long targetNumber, string actor, CancellationToken cancellationToken = default);

    [ResponseTimeout(MergeTimeout)]
    Task<CustomerSnapshot> MergeCustomersAsync(Guid sourceCustomerId, Guid targetCustomerId, string actor, CancellationToken cancellationToken = default);
}
