using Crm.Connectors.Abstractions;

namespace Crm.Service.Hosting;

/// <summary>
/// Gives the problems ASP.NET Core writes by itself (a challenge or forbid from authentication, a route that does not
/// exist, a status code page) the same <c>urn:crm:problem:</c> type and title as the ones we build, so a client can
/// switch on <c>type</c> for every 4xx. A 500 keeps the framework's type: it is a bug, not a kind of refusal.
/// </summary>
internal static class ProblemTypes
{
    public static void Conform(ProblemDetailsContext context)
    {
        var details = context.ProblemDetails;
        if (details.Type?.StartsWith("urn:crm:problem:", StringComparison.Ordinal) == true || KindOf(details.Status) is not { } kind)
            return;
        var conforming = Problems.Details(kind, details.Detail ?? "");
        details.Type = conforming.Type;
        details.Title = conforming.Title;
        details.Detail ??= conforming.Title;
    }

    private static ProblemKind? KindOf(int? status) => status switch
    {
        StatusCodes.Status400BadRequest => ProblemKind.MalformedBody,
        StatusCodes.Status401Unauthorized => ProblemKind.Unauthorized,
        StatusCodes.Status403Forbidden => ProblemKind.Forbidden,
        StatusCodes.Status404NotFound => ProblemKind.NotFound,
        StatusCodes.Status409Conflict => ProblemKind.Conflict,
        StatusCodes.Status413PayloadTooLarge => ProblemKind.TooLarge,
        StatusCodes.Status422UnprocessableEntity => ProblemKind.Invalid,
        StatusCodes.Status429TooManyRequests => ProblemKind.RateLimited,
        _ => null,
    };
}
