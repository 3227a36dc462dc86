using Crm.Service.Api;
using Microsoft.AspNetCore.Mvc.ModelBinding;

namespace Crm.Service.Pages;

/// <summary>The "Log a call" form of the ticket and customer pages (<c>Shared/_LogCall.cshtml</c>): what it shows, and
/// how its posted fields become a <see cref="CallRequest"/>.</summary>
public sealed record CallForm(string RequestId, string? Direction, string? Phone, string? Time, string? Duration, string? Result, string? Summary,
    bool Open, Guid? HeldBy, string? HeldPhone)
{
    /// <summary>The request from the posted fields; a field the form cannot read is a model error under its name.</summary>
    public static CallRequest? Read(string? direction, string? phone, string? time, string? duration, string? result, string? summary, ModelStateDictionary state)
    {
        if (!CallLog.TryParseTime(time, out var at))
            state.AddModelError("CallTime", "Enter the time of the call as yyyy-mm-dd hh:mm (UTC), or leave it empty for now.");
        if (!CallLog.TryParseDuration(duration, out var seconds))
            state.AddModelError("CallDuration", "Enter the duration as minutes:seconds (5:30) or whole minutes.");
        return state.IsValid ? new CallRequest(direction, phone, at, seconds, summary, result) : null;
    }

    /// <summary>The form's one-time id: a double-submitted form logs one call (the grain's idempotency key).</summary>
    public static string RequestKey(string userId, string? posted) =>
        $"console:{userId}:call:{(Guid.TryParse(posted, out var id) && id != Guid.Empty ? id.ToString("N") : Guid.NewGuid().ToString("N"))}";
}
