using Crm.Service.Contracts;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Crm.Connectors.Api.Http;

/// <summary>RFC 9457 problem details that name the offending field, so a client can fix its request.</summary>
public static class Problems
{
    public static ProblemHttpResult Field(int status, string title, string detail, string? field) =>
        TypedResults.Problem(new()
        {
            Status = status,
            Title = title,
            Detail = detail,
            Type = $"https://httpstatuses.io/{status}",
            Extensions = field is null ? new Dictionary<string, object?>() : new Dictionary<string, object?> { ["field"] = field },
        });

    public static ProblemHttpResult Invalid(string field, string detail) =>
        Field(StatusCodes.Status422UnprocessableEntity, "Invalid field", detail, field);

    public static ProblemHttpResult From(DomainRuleException ex) =>
        Field(ex.Status, ex.Status switch { 404 => "Not found", 413 => "Too large", 422 => "Invalid field", _ => "Conflict" }, ex.Message, ex.Field);
}
