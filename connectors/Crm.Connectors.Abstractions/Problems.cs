using Crm.Service.Contracts;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Crm.Connectors.Abstractions;

/// <summary>What went wrong with a request, independent of how it is reported.</summary>
public enum ProblemKind
{
    /// <summary>A field has a value the domain refuses (422).</summary>
    Invalid,
    NotFound,
    Conflict,
    TooLarge,
    /// <summary>The body is not JSON, not UTF-8, or not the expected shape (400).</summary>
    MalformedBody,
    Unauthorized,
    Forbidden,
    RateLimited,
}

/// <summary>
/// The one map from a problem kind to its HTTP status, title and RFC 9457 <c>type</c>. Every problem the service
/// answers is built here, so a client can switch on <c>type</c> (<c>urn:crm:problem:not-found</c>, …) and read
/// <c>field</c> to know which part of its request to fix.
/// </summary>
public static class Problems
{
    private const string TypePrefix = "urn:crm:problem:";

    public static (int Status, string Title, string Slug) Describe(ProblemKind kind) => kind switch
    {
        ProblemKind.Invalid => (StatusCodes.Status422UnprocessableEntity, "Invalid field", "invalid"),
        ProblemKind.NotFound => (StatusCodes.Status404NotFound, "Not found", "not-found"),
        ProblemKind.Conflict => (StatusCodes.Status409Conflict, "Conflict", "conflict"),
        ProblemKind.TooLarge => (StatusCodes.Status413PayloadTooLarge, "Too large", "too-large"),
        ProblemKind.MalformedBody => (StatusCodes.Status400BadRequest, "Malformed body", "malformed-body"),
        ProblemKind.Unauthorized => (StatusCodes.Status401Unauthorized, "Not authenticated", "unauthorized"),
        ProblemKind.Forbidden => (StatusCodes.Status403Forbidden, "Forbidden", "forbidden"),
        ProblemKind.RateLimited => (StatusCodes.Status429TooManyRequests, "Too many requests", "rate-limited"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    public static ProblemKind KindOf(DomainErrorKind kind) => kind switch
    {
        DomainErrorKind.Invalid => ProblemKind.Invalid,
        DomainErrorKind.NotFound => ProblemKind.NotFound,
        DomainErrorKind.TooLarge => ProblemKind.TooLarge,
        DomainErrorKind.Forbidden => ProblemKind.Forbidden,
        _ => ProblemKind.Conflict,
    };

    public static ProblemDetails Details(ProblemKind kind, string detail, string? field = null)
    {
        var (status, title, slug) = Describe(kind);
        var details = new ProblemDetails { Status = status, Title = title, Detail = detail, Type = TypePrefix + slug };
        if (field is not null)
            details.Extensions["field"] = field;
        return details;
    }

    public static ProblemHttpResult Of(ProblemKind kind, string detail, string? field = null) => TypedResults.Problem(Details(kind, detail, field));

    public static ProblemHttpResult Invalid(string field, string detail) => Of(ProblemKind.Invalid, detail, field);

    public static ProblemHttpResult NotFound(string field, string detail) => Of(ProblemKind.NotFound, detail, field);

    public static ProblemHttpResult From(DomainException ex) => Of(KindOf(ex.Kind), ex.Message, ex.Field);

    /// <summary>"$.sender.id" → "sender.id"; "$.attachments[0].fileName" → "attachments[0].fileName"; the root → null.</summary>
    public static string? FieldOf(string? jsonPath) =>
        string.IsNullOrEmpty(jsonPath) || jsonPath == "$" ? null : jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..] : jsonPath.TrimStart('$');
}
