namespace Crm.Service.Contracts;

/// <summary>How a contact with a customer was made.</summary>
public enum FollowUpChannel
{
    Phone = 0,
    Email = 1,
    Visit = 2,
    Chat = 3,
    Other = 4,
}

/// <summary>One entry of a customer's follow-up log: who contacted the customer, when, how, what came of it, and when
/// the next follow-up is due (a durable reminder tells the owner then, and the supervisors when it is missed).</summary>
[GenerateSerializer, Immutable, Alias("crm.CustomerFollowUp")]
public sealed record CustomerFollowUp
{
    [Id(0)] public required Guid Id { get; init; }
    [Id(1)] public required Guid CustomerId { get; init; }
    [Id(2)] public long? Ticket { get; init; }
    /// <summary>Who followed up (the actor: a console user or "apikey:name").</summary>
    [Id(3)] public required string By { get; init; }
    [Id(4)] public required DateTimeOffset At { get; init; }
    [Id(5)] public required FollowUpChannel How { get; init; }
    [Id(6)] public string? Outcome { get; init; }
    [Id(7)] public DateTimeOffset? NextDueAt { get; init; }
    /// <summary>Who is responsible for the next follow-up (a sign-in name; default: who recorded it).</summary>
    [Id(8)] public string? Owner { get; init; }
    [Id(9)] public string? Team { get; init; }
    [Id(10)] public DateTimeOffset RecordedAt { get; init; }
    /// <summary>The next follow-up happened (a later entry for the customer) or was marked done.</summary>
    [Id(11)] public DateTimeOffset? DoneAt { get; init; }
    [Id(12)] public DateTimeOffset? RemindedAt { get; init; }
    [Id(13)] public DateTimeOffset? EscalatedAt { get; init; }
    /// <summary>The earlier open entries this contact is the follow-up of, decided when it was recorded and stored with
    /// it: the grain closes them after the store, a replay closes them again, and an earlier entry's tick that finds
    /// itself named here closes itself instead of reminding (so a crash in between never reminds of a done contact).</summary>
    [Id(14)] public IReadOnlyList<Guid> Closes { get; init; } = [];
    /// <summary>Who marked it done (an actor, or "follow-up:{id}" when a later entry closed it).</summary>
    [Id(15)] public string? DoneBy { get; init; }
    /// <summary>The owner (else the author) and the team, lower-cased in .NET (full Unicode) for the due lists' filters:
    /// SQLite's lower() folds ASCII only.</summary>
    [Id(16)] public string? OwnerKey { get; init; }
    [Id(17)] public string? TeamKey { get; init; }
    /// <summary>The console account the owner resolved to when the entry was recorded (a sign-in name, email, account id
    /// or personal key's actor), so "Mine" on /FollowUps finds it whatever form the owner was given in; null for nobody.</summary>
    [Id(18)] public string? OwnerId { get; init; }
}

/// <summary>One follow-up log entry (key: its id); its next-due reminder is durable.</summary>
public interface ICustomerFollowUpGrain : IGrainWithGuidKey
{
    /// <summary>Stores the entry (once: a second call returns the first) and sets its reminder.</summary>
    Task<CustomerFollowUp> RecordAsync(CustomerFollowUp entry, CancellationToken cancellationToken = default);

    /// <summary>The next follow-up happened: no reminder, no escalation any more. <paramref name="by"/> is kept as
    /// <see cref="CustomerFollowUp.DoneBy"/>.</summary>
    Task<CustomerFollowUp?> CompleteAsync(string? by = null, CancellationToken cancellationToken = default);

    [Orleans.Concurrency.ReadOnly]
    Task<CustomerFollowUp?> GetAsync();
}
