namespace Crm.Service.Contracts;

/// <summary>A channel account as the admin sees it: never a secret, only whether one is set.</summary>
[GenerateSerializer, Immutable, Alias("crm.ChannelAccountSnapshot")]
public sealed record ChannelAccountSnapshot
{
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public required ChannelKind Kind { get; init; }
    [Id(2)] public required string Name { get; init; }
    [Id(3)] public required bool Enabled { get; init; }
    /// <summary>The kind's settings without their secret fields, as JSON.</summary>
    [Id(4)] public string? Settings { get; init; }
    /// <summary>The names of the secret settings that are set.</summary>
    [Id(5)] public IReadOnlyList<string> SecretSettings { get; init; } = [];
    [Id(6)] public bool HasSecret { get; init; }
    [Id(7)] public DateTimeOffset? LastSuccessAt { get; init; }
    [Id(8)] public DateTimeOffset? LastErrorAt { get; init; }
    /// <summary>The server's words on the last failure; for admins, never agents.</summary>
    [Id(9)] public string? LastError { get; init; }
    [Id(10)] public DateTimeOffset CreatedAt { get; init; }
    [Id(11)] public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>An account's new configuration, validated by the admin API against the kind's settings type.</summary>
[GenerateSerializer, Immutable, Alias("crm.ChannelAccountSettings")]
public sealed record ChannelAccountSettings
{
    [Id(0)] public required ChannelKind Kind { get; init; }
    [Id(1)] public required string Name { get; init; }
    [Id(2)] public bool Enabled { get; init; } = true;
    /// <summary>The settings without secret fields, as JSON.</summary>
    [Id(3)] public string? Settings { get; init; }
    /// <summary>Plain secret settings to set; a secret setting not named here keeps its stored value.</summary>
    [Id(4)] public IReadOnlyDictionary<string, string> SecretSettings { get; init; } = new Dictionary<string, string>();
    /// <summary>The channel (signing) secret; null keeps the current one, or generates one for a new account.</summary>
    [Id(5)] public string? Secret { get; init; }
    /// <summary>When set, the change applies only if the account's <see cref="ChannelAccountSnapshot.UpdatedAt"/> is still
    /// this (else Conflict): the grain compares and writes in one turn, so a form made from an older snapshot never
    /// overwrites a newer change (review WC4).</summary>
    [Id(6)] public DateTimeOffset? ExpectedUpdatedAt { get; init; }

    /// <summary>Never prints the secret or secret settings: records end up in logs and exception messages.</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append($"Kind = {Kind}, Name = {Name}, Enabled = {Enabled}, SecretSettings = [{string.Join(", ", SecretSettings.Keys)}]");
        return true;
    }
}

/// <summary>The answer to a configuration or a rotation: the account, and the secret when one was just issued (shown once).</summary>
[GenerateSerializer, Immutable, Alias("crm.ChannelAccountConfigured")]
public sealed record ChannelAccountConfigured(
    [property: Id(0)] ChannelAccountSnapshot Account,
    [property: Id(1)] bool Created,
    [property: Id(2)] string? IssuedSecret);

/// <summary>One report of an account's health: a success, or an error in the server's words.</summary>
[GenerateSerializer, Immutable, Alias("crm.ChannelHealthReport")]
public sealed record ChannelHealthReport(
    [property: Id(0)] DateTimeOffset At,
    [property: Id(1)] string? Error = null);

[GenerateSerializer, Immutable, Alias("crm.DeliveryUpdate")]
public sealed record DeliveryUpdate(
    [property: Id(0)] DeliveryStatus Status,
    [property: Id(1)] string? Reason,
    [property: Id(2)] string? ExternalId = null,
    /// <summary>When a channel reports, the account it reports from: a receipt for another channel's message is refused.</summary>
    [property: Id(3)] string? ChannelAccountId = null);
