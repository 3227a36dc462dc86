using Crm.Service.Api;
using Crm.Service.Auth;
using Microsoft.AspNetCore.Mvc;

namespace Crm.Service.Pages.Customers;

/// <summary>Log a call on the customer page (the form and its rules: <see cref="CallFormFields"/>).</summary>
public sealed partial class DetailsModel
{
    [BindProperty] public CallFormFields CallFields { get; set; } = new();

    [TempData] public string? CallNumberHeld { get; set; }

    public CallForm Call => CallFields.Show(ModelState, CallNumberHeld);

    /// <summary>Records a call without a ticket, shown in the customer's timeline of events.</summary>
    public async Task<IActionResult> OnPostCallAsync(CancellationToken cancellationToken)
    {
        var request = CallFields.Read(ModelState);
        var calls = HttpContext.RequestServices.GetRequiredService<CallLog>();
        return await ChangeAsync(async () =>
        {
            var logged = await calls.OnCustomerAsync(Id, calls.Parse(request!), User.ConsoleActor(), CallFields.RequestKey(User), cancellationToken);
            CallNumberHeld = CallFields.Held(logged);
            return logged.Customer;
        }, cancellationToken);
    }
}
