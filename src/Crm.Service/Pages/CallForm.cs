using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Crm.Service.AgentConsole;
using Crm.Service.Api;
using Microsoft.AspNetCore.Mvc.ModelBinding;

namespace Crm.Service.Pages;

/// <summary>The "Log a call" form of the ticket and customer pages (<c>Shared/_LogCall.cshtml</c>): what it shows.</summary>
public sealed record CallForm(string RequestId, string? Direction, string? Phone, string? Time, string? Duration, string? Result, string? Summary,
    bool Open, Guid? HeldBy, string? HeldPhone, bool Connected = false);

/// <summary>
/// The posted fields of the "Log a call" form, one class for both pages (each page binds it as <c>[BindProperty]</c>;
/// the form's fields carry no prefix, so they bind by their own names), with everything the two handlers share: reading
/// the fields, the one-time request key, the form to show again and the "number held by another customer" notice.
/// </summary>
public sealed class CallFormFields
{
    public string? CallRequestId { get; set; }
    public string? CallDirection { get; set; }
    [StringLength(CallLog.MaxPhoneLength)] public string? CallPhone { get; set; }
    [StringLength(40)] public string? CallTime { get; set; }
    [StringLength(10)] public string? CallDuration { get; set; }
    public string? CallResult { get; set; }
    public string? CallSummary { get; set; }
    /// <summary>The "Answered" box (review CX1): the console always says whether the call connected, so only a ticked
    /// call is the agent's response; unticked (not posted) is a missed call.</summary>
    public bool CallConnected { get; set; }

    /// <summary>The request from the posted fields; a field the form cannot read is a model error under its name.</summary>
    public CallRequest? Read(ModelStateDictionary state)
    {
        if (!CallLog.TryParseTime(CallTime, out var at))
            state.AddModelError(nameof(CallTime), "Enter the time of the call as yyyy-mm-dd hh:mm (UTC), or leave it empty for now.");
        if (!CallLog.TryParseDuration(CallDuration, out var seconds))
            state.AddModelError(nameof(CallDuration), "Enter the duration as minutes:seconds (5:30) or whole minutes.");
        return state.IsValid ? new CallRequest(CallDirection, CallPhone, at, seconds, CallSummary, CallResult, CallConnected) : null;
    }

    /// <summary>The form's one-time id: a double-submitted form logs one call (the grain's idempotency key).</summary>
    public string RequestKey(ClaimsPrincipal user) =>
        $"console:{TicketAccess.UserId(user)}:call:{(Guid.TryParse(CallRequestId, out var id) && id != Guid.Empty ? id.ToString("N") : Guid.NewGuid().ToString("N"))}";

    /// <summary>The form to render: after a refusal with what was posted (and the same one-time id), else empty.
    /// <paramref name="held"/> is the page's TempData from <see cref="Held"/>.</summary>
    public CallForm Show(ModelStateDictionary state, string? held) => new(
        CallRequestId is { Length: > 0 } posted && !state.IsValid ? posted : Guid.NewGuid().ToString("N"),
        CallDirection, CallPhone, CallTime, CallDuration, CallResult, CallSummary, Open: !state.IsValid && CallPhone is not null,
        held?.Split('|', 2) is [var by, _] && Guid.TryParse(by, out var holder) ? holder : null,
        held?.Split('|', 2) is [_, var phone] ? phone : null, CallConnected && !state.IsValid);

    /// <summary>For the page's TempData after the redirect: "{holder}|{number}" when the call's number already belonged to
    /// another customer (it was not moved), else null. One string: TempData reads a bare Guid back as a Guid.</summary>
    public string? Held(CallLogged logged) => logged.Phone is { HeldByAnother: true } phone ? $"{phone.CustomerId}|{CallPhone}" : null;
}
