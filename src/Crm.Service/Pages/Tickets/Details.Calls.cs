using Crm.Service.AgentConsole;
using Crm.Service.Api;
using Crm.Service.Auth;
using Microsoft.AspNetCore.Mvc;

namespace Crm.Service.Pages.Tickets;

/// <summary>Log a call on the ticket page (kept apart from the reply and note forms).</summary>
public sealed partial class DetailsModel
{
    [BindProperty] public string? CallRequestId { get; set; }
    [BindProperty] public string? CallDirection { get; set; }
    [BindProperty, System.ComponentModel.DataAnnotations.StringLength(40)] public string? CallPhone { get; set; }
    [BindProperty, System.ComponentModel.DataAnnotations.StringLength(40)] public string? CallTime { get; set; }
    [BindProperty, System.ComponentModel.DataAnnotations.StringLength(10)] public string? CallDuration { get; set; }
    [BindProperty] public string? CallResult { get; set; }
    [BindProperty] public string? CallSummary { get; set; }

    /// <summary>After a redirect: "{holder}|{number}", the customer who already held the call's number (it was not
    /// moved). One string: TempData reads a bare Guid back as a Guid, not a string.</summary>
    [TempData] public string? CallNumberHeld { get; set; }

    public CallForm Call => new(CallRequestId is { Length: > 0 } posted && !ModelState.IsValid ? posted : Guid.NewGuid().ToString("N"),
        CallDirection, CallPhone, CallTime, CallDuration, CallResult, CallSummary, Open: !ModelState.IsValid && CallPhone is not null,
        CallNumberHeld?.Split('|', 2) is [var by, _] && Guid.TryParse(by, out var holder) ? holder : null,
        CallNumberHeld?.Split('|', 2) is [_, var phone] ? phone : null);

    /// <summary>Records a phone call on this ticket: a message of the phone channel, nothing sent; the number joins the
    /// customer's identities unless another customer holds it (then the page says so).</summary>
    public async Task<IActionResult> OnPostCallAsync(CancellationToken cancellationToken)
    {
        var request = CallForm.Read(CallDirection, CallPhone, CallTime, CallDuration, CallResult, CallSummary, ModelState);
        var calls = HttpContext.RequestServices.GetRequiredService<CallLog>();
        return await ChangeAsync(async () =>
        {
            var logged = await calls.OnTicketAsync(Number, calls.Parse(request!), User.ConsoleActor(),
                CallForm.RequestKey(TicketAccess.UserId(User), CallRequestId), cancellationToken);
            if (logged.Phone is { HeldByAnother: true })
            {
                CallNumberHeld = $"{logged.Phone!.CustomerId}|{request!.Phone}";
            }
        }, () => { }, cancellationToken);
    }
}
