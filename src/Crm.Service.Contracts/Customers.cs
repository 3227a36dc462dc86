namespace Crm.Service.Contracts;

[GenerateSerializer, Immutable, Alias("crm.IdentitySnapshot")]
public sealed record IdentitySnapshot(
    [property: Id(0)] string Key,
    [property: Id(1)] IdentityKind Kind,
    [property: Id(2)] string Value,
    [property: Id(3)] DateTimeOffset LinkedAt);

[GenerateSerializer, Immutable, Alias("crm.CustomerSnapshot")]
public sealed record CustomerSnapshot
{
    [Id(0)] public required Guid Id { get; init; }
    [Id(1)] public string? Name { get; init; }
    [Id(2)] public string? Language { get; init; }
    [Id(3)] public string? Organization { get; init; }
    [Id(4)] public IReadOnlyList<string> Tags { get; init; } = [];
    [Id(5)] public string? Notes { get; init; }
    [Id(6)] public IReadOnlyDictionary<string, string> CustomFields { get; init; } = new Dictionary<string, string>();
    [Id(7)] public IReadOnlyList<IdentitySnapshot> Identities { get; init; } = [];
    [Id(8)] public Guid? MergedInto { get; init; }
    [Id(9)] public required DateTimeOffset CreatedAt { get; init; }
}

/// <summary>A partial profile change; null fields are left as they are.</summary>
[GenerateSerializer, Immutable, Alias("crm.CustomerProfileChange")]
public sealed record CustomerProfileChange
{
    [Id(0)] public string? Name { get; init; }
    [Id(1)] public string? Language { get; init; }
    [Id(2)] public string? Organization { get; init; }
    [Id(3)] public IReadOnlyList<string>? Tags { get; init; }
    [Id(4)] public string? Notes { get; init; }
    /// <summary>Keys with a null value are removed.</summary>
    [Id(5)] public IReadOnlyDictionary<string, string?>? CustomFields { get; init; }
}
