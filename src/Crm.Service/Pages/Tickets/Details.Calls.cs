using Crm.Service.Api;
using Crm.Service.Auth;
using Microsoft.AspNetCore.Mvc;

namespace Crm.Service.Pages.Tickets;

/// <summary>Log a call on the ticket page (the form and its rules: <see cref="CallFormFields"/>).</summary>
public sealed partial class DetailsModel
{
    [BindProperty] public CallFormFields CallFields { get; set; } = new();

    [TempData] public string? CallNumberHeld { get; set; }

    public CallForm Call => CallFields.Show(ModelState, CallNumberHeld);

    /// <summary>Records a phone call on this ticket: a message of the phone channel, nothing sent.</summary>
    public async Task<IActionResult> OnPostCallAsync(CancellationToken cancellationToken)
    {
        var request = CallFields.Read(ModelState);
        var calls = HttpContext.RequestServices.GetRequiredService<CallLog>();
        return await ChangeAsync(async () => CallNumberHeld = CallFields.Held(
            await calls.OnTicketAsync(Number, calls.Parse(request!), User.ConsoleActor(), CallFields.RequestKey(User), cancellationToken)), () => { }, cancellationToken);
    }
}
