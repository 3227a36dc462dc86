namespace Crm.Service.Contracts;

/// <summary>Why the domain refused a request; the HTTP edge maps each kind to one status and problem type.</summary>
public enum DomainErrorKind
{
    /// <summary>A value breaks a rule (missing, too long, not allowed here).</summary>
    Invalid = 0,
    NotFound = 1,
    /// <summary>The request is fine but the entity's current state does not allow it (closed, merged, already exists).</summary>
    Conflict = 2,
    TooLarge = 3,
    Forbidden = 4,
}

/// <summary>Thrown for a request the domain refuses. Grains throw it; it crosses the silo boundary intact.</summary>
[GenerateSerializer, Alias("crm.DomainException")]
public sealed class DomainException : Exception
{
    public DomainException() { }
    public DomainException(string message) : base(message) { }
    public DomainException(string message, Exception inner) : base(message, inner) { }
    public DomainException(DomainErrorKind kind, string message, string? field = null) : base(message)
    {
        Kind = kind;
        Field = field;
    }

    [Id(0)] public DomainErrorKind Kind { get; init; } = DomainErrorKind.Conflict;
    /// <summary>The request field at fault, in the public API's spelling, when there is one.</summary>
    [Id(1)] public string? Field { get; init; }
}
