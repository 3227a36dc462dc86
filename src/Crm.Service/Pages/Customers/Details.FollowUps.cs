using Crm.Service.Api;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.Customers;

/// <summary>The customer's follow-up log in the 360 view (newest contact first, one page) and closing an open one: its
/// author or owner, a member of its team or the owner's team, or an admin (as in the API), kept in the audit.</summary>
public sealed partial class DetailsModel
{
    public const int FollowUpPage = 20;

    public async Task<IReadOnlyList<CustomerFollowUp>> FollowUpLogAsync(CancellationToken cancellationToken = default) =>
        [.. (await HttpContext.RequestServices.GetRequiredService<IRoutingStore>()
            .CustomerFollowUpsAsync(Customer.MergedInto ?? Id, false, null, null, FollowUpPage, cancellationToken)).Select(RoutingJson.Read<CustomerFollowUp>)];

    public async Task<IActionResult> OnPostFollowUpDoneAsync(Guid followUp, CancellationToken cancellationToken)
    {
        var services = HttpContext.RequestServices;
        var grains = services.GetRequiredService<IGrainFactory>();
        var contexts = services.GetRequiredService<IDbContextFactory<CrmDbContext>>();
        if (await grains.GetGrain<ICustomerFollowUpGrain>(followUp).GetAsync() is not { } entry || entry.CustomerId != Id)
            return NotFound();
        var closer = CustomerFollowUpApi.Closer.Of(User);
        if (!await CustomerFollowUpApi.MayCloseAsync(entry, closer, contexts, cancellationToken))
            return Forbid();
        await CustomerFollowUpApi.CloseAsync(grains, contexts, services.GetRequiredService<TimeProvider>(), entry, closer.Actor, cancellationToken);
        return RedirectToPage(new { id = Id });
    }
}
