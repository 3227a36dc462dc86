using Crm.Service.Api;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.Customers;

/// <summary>The customer's follow-up log in the 360 view (newest contact first, one page) and closing an open one: its
/// author or owner, a member of its team or the owner's team, or an admin (as in the API), kept in the audit. An entry of
/// a restricted team the person is not in (its team, or its ticket's) is hidden and cannot be closed from here (RT3), as
/// the customer's tickets in that team are.</summary>
public sealed partial class DetailsModel
{
    public const int FollowUpPage = 20;

    [BindProperty] public FollowUpFormFields FollowUpFields { get; set; } = new();

    public FollowUpForm FollowUpEntry => FollowUpFields.Show(ModelState);

    /// <summary>Records a contact on this customer (the one it was merged into, whose log this page lists) through the
    /// handler of POST /api/v1/customers/{id}/follow-ups; a refusal is shown at its field (422).</summary>
    public async Task<IActionResult> OnPostRecordFollowUpAsync(CancellationToken cancellationToken)
    {
        if (await customers.GetAsync(Id, cancellationToken) is not { } customer)
            return NotFound();
        if (ModelState.IsValid && await FollowUpFields.RecordAsync(customer.MergedInto ?? Id, null, User, HttpContext.RequestServices, ModelState,
                await access.HiddenTeamsAsync(User, cancellationToken), cancellationToken))
            return Redirect($"/Customers/{Id}");
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        return await LoadAsync(null, cancellationToken) ? Page() : NotFound();
    }

    public async Task<IReadOnlyList<CustomerFollowUp>> FollowUpLogAsync(CancellationToken cancellationToken = default)
    {
        var log = (await HttpContext.RequestServices.GetRequiredService<IRoutingStore>()
            .CustomerFollowUpsAsync(Customer.MergedInto ?? Id, false, null, null, FollowUpPage, cancellationToken)).Select(RoutingJson.Read<CustomerFollowUp>).ToList();
        return await FollowUpReach.VisibleAsync(log, await access.HiddenTeamsAsync(User, cancellationToken),
            HttpContext.RequestServices.GetRequiredService<IDbContextFactory<CrmDbContext>>(), cancellationToken);
    }

    public async Task<IActionResult> OnPostFollowUpDoneAsync(Guid followUp, CancellationToken cancellationToken)
    {
        var services = HttpContext.RequestServices;
        var grains = services.GetRequiredService<IGrainFactory>();
        var contexts = services.GetRequiredService<IDbContextFactory<CrmDbContext>>();
        // The log lists the entries of the customer this one was merged into (RT9): those are closed from here too.
        if (await customers.GetAsync(Id, cancellationToken) is not { } customer
            || await grains.GetGrain<ICustomerFollowUpGrain>(followUp).GetAsync() is not { } entry || entry.CustomerId != (customer.MergedInto ?? Id))
            return NotFound();
        if (!await FollowUpReach.IsVisibleAsync(entry, await access.HiddenTeamsAsync(User, cancellationToken), contexts, cancellationToken))
            return NotFound();
        var closer = CustomerFollowUpApi.Closer.Of(User);
        if (!await CustomerFollowUpApi.MayCloseAsync(entry, closer, contexts, cancellationToken))
            return Forbid();
        await CustomerFollowUpApi.CloseAsync(grains, contexts, services.GetRequiredService<TimeProvider>(), entry, closer.Actor, cancellationToken);
        return RedirectToPage(new { id = Id });
    }
}
