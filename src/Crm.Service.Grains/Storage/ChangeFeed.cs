namespace Crm.Service.Grains.Storage;

/// <summary>
/// One entry of the durable change feed: entity <see cref="EntityId"/> of type <see cref="Entity"/> changed in the
/// way <see cref="Kind"/> names. The store appends these rows in the same transaction as the change itself, so the
/// feed never misses a committed change and never shows one that was rolled back. <see cref="Sequence"/> is
/// strictly increasing and serves as the entity's version: a consumer that has applied sequence N for an entity
/// can skip anything at or below it.
/// </summary>
public sealed record Change(long Sequence, string Entity, string EntityId, string Kind, DateTimeOffset At);

/// <summary>The entity names of the change feed (see docs/architecture.md, "Change feed").</summary>
public static class ChangeEntities
{
    public const string Ticket = "ticket";
    public const string Message = "message";
    public const string Conversation = "conversation";
    public const string Customer = "customer";
    public const string Identity = "identity";
    public const string ChannelAccount = "channel";
}

/// <summary>The change kinds of the change feed.</summary>
public static class ChangeKinds
{
    public const string Created = "created";
    public const string Updated = "updated";
    /// <summary>The entity was merged into another (its content moved there).</summary>
    public const string Merged = "merged";
    /// <summary>The entity was removed before it held anything: a ticket and conversation opened for a message that
    /// turned out to be a copy of one stored at the same instant on another thread.</summary>
    public const string Withdrawn = "withdrawn";
    /// <summary>An outbound message's delivery status changed.</summary>
    public const string Delivery = "delivery";
}

/// <summary>
/// A subscriber of the change feed (live console, search indexing, SLA timers, routing, the channel directory).
/// The dispatcher hands it changes in sequence order, at least once, and persists the consumer's cursor after
/// <see cref="HandleAsync"/> returns; a crash in between hands the same changes again, so a consumer must be
/// idempotent (applying a change twice has the effect of applying it once).
/// </summary>
public interface IChangeConsumer
{
    /// <summary>Stable name under which the consumer's cursor is persisted; renaming it replays the whole feed.</summary>
    string Name { get; }

    /// <summary>True for a consumer that serves the node it runs on (pushes to that node's own connections, counters in
    /// its memory): every node gets every change from its start, under a cursor kept in memory and never saved. False
    /// (the default) for work done once for the whole store, under one saved cursor.</summary>
    bool EveryNode => false;

    Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken);

    /// <summary>Changes after the consumer's cursor were pruned before it read them. A consumer that can rebuild its state
    /// from the store does so and returns true: an <see cref="EveryNode"/> consumer on a node that was down or failing for
    /// longer than the retention, or a search index whose per-node saved cursor another node's pruning passed (it owes a
    /// rebuild durably before it returns). The dispatcher reads the feed's head before calling this, moves the cursor
    /// there once it returned true, and hands changes committed meanwhile afterwards. The default returns false: the
    /// consumer goes on with the oldest change still kept, skipping only what was pruned (a new consumer starts there).</summary>
    Task<bool> ResetAsync(CancellationToken cancellationToken) => Task.FromResult(false);
}

/// <summary>Protects secrets (channel secrets, mailbox passwords, bot tokens) at rest.</summary>
public interface ISecretProtector
{
    string Protect(string plaintext);

    /// <summary>The plain secret of a value made by <see cref="Protect"/>.</summary>
    /// <exception cref="System.Security.Cryptography.CryptographicException">The value was not made with this install's keys.</exception>
    string Unprotect(string protectedValue);
}
