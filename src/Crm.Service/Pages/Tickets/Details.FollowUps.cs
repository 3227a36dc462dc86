using Microsoft.AspNetCore.Mvc;

namespace Crm.Service.Pages.Tickets;

/// <summary>Record a follow-up (the customer's follow-up log) on the ticket page, tied to this ticket.</summary>
public sealed partial class DetailsModel
{
    [BindProperty] public FollowUpFormFields FollowUpFields { get; set; } = new();

    public FollowUpForm FollowUpEntry => FollowUpFields.Show(ModelState);

    /// <summary>Records a contact on the ticket's customer, tied to the ticket, through the handler of
    /// POST /api/v1/customers/{id}/follow-ups; a refusal is shown at its field (422). The page's filter has checked that
    /// this person may see the ticket.</summary>
    public async Task<IActionResult> OnPostRecordFollowUpAsync(CancellationToken cancellationToken)
    {
        if (await queries.GetAsync(Number, cancellationToken) is not { } ticket)
            return NotFound();
        if (ModelState.IsValid && await FollowUpFields.RecordAsync(ticket.CustomerId, Number, User, HttpContext.RequestServices, ModelState,
                await access.HiddenTeamsAsync(User, cancellationToken), cancellationToken))
            return Redirect($"/Tickets/{Number}");
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        return await LoadAsync(null, cancellationToken) ? Page() : NotFound();
    }
}
