using Crm.Service.Api;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Customers;

/// <summary>Customer 360 (first part): profile, identities on every channel, the customer's tickets; merge another
/// customer into this one and detach an identity, through the same grain calls as the REST API.</summary>
public sealed class DetailsModel(CustomerQueries customers, IGrainFactory grains, Crm.Service.AgentConsole.TicketAccess access) : PageModel
{
    [FromRoute] public Guid Id { get; set; }

    public CustomerView Customer { get; private set; } = null!;

    public Page<TicketView> Tickets { get; private set; } = new([], null);

    [BindProperty] public Guid? MergeFrom { get; set; }

    [BindProperty] public string? Identity { get; set; }

    public async Task<IActionResult> OnGetAsync(string? cursor, CancellationToken cancellationToken) =>
        await LoadAsync(cursor, cancellationToken) ? Page() : NotFound();

    public async Task<IActionResult> OnPostMergeAsync(CancellationToken cancellationToken)
    {
        if (MergeFrom is not { } source || source == Id)
            ModelState.AddModelError(nameof(MergeFrom), "Enter the id of another customer to merge into this one.");
        return await ChangeAsync(async () =>
        {
            // Through the coordinator, which runs merges one at a time (two opposite merges cannot wait on each other).
            await grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers).MergeCustomersAsync(MergeFrom!.Value, Id, User.ConsoleActor(), cancellationToken);
            return Id;
        }, cancellationToken);
    }

    public async Task<IActionResult> OnPostDetachAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(Identity) || Identity.Length > AgentApi.MaxIdentityKeyLength)
            ModelState.AddModelError(nameof(Identity), "Choose an identity to detach.");
        return await ChangeAsync(async () =>
        {
            var identity = grains.GetGrain<IIdentityGrain>(Identity!);
            if (await identity.GetCustomerAsync() != Id)
                throw new DomainException(DomainErrorKind.NotFound, "This customer has no such identity.", "identity");
            return await identity.DetachAsync(User.ConsoleActor(), cancellationToken);
        }, cancellationToken);
    }

    private async Task<IActionResult> ChangeAsync(Func<Task<Guid>> change, CancellationToken cancellationToken)
    {
        if (ModelState.IsValid)
        {
            try
            {
                return Redirect($"/Customers/{await change()}");
            }
            catch (DomainException refused)
            {
                ModelState.AddModelError("", refused.Message);
            }
        }
        Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
        return await LoadAsync(null, cancellationToken) ? Page() : NotFound();
    }

    private async Task<bool> LoadAsync(string? cursor, CancellationToken cancellationToken)
    {
        if (await customers.GetAsync(Id, cancellationToken) is not { } customer)
            return false;
        Customer = customer;
        TicketCursor? after = cursor is not null && TicketCursor.TryDecode(cursor, out var decoded) ? decoded : null;
        Tickets = await customers.TicketsAsync(Id, after, 50, cancellationToken, await access.HiddenTeamsAsync(User, cancellationToken)) ?? new([], null);
        return true;
    }
}
