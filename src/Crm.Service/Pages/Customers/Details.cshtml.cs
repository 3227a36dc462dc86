using Crm.Service.Infrastructure.Queries;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Customers;

/// <summary>Customer 360 (first part): profile, identities on every channel and the customer's tickets.</summary>
public sealed class DetailsModel(CustomerQueries customers) : PageModel
{
    [FromRoute] public Guid Id { get; set; }

    public CustomerView Customer { get; private set; } = null!;

    public Page<TicketView> Tickets { get; private set; } = new([], null);

    public async Task<IActionResult> OnGetAsync(string? cursor, CancellationToken cancellationToken)
    {
        if (await customers.GetAsync(Id, cancellationToken) is not { } customer)
            return NotFound();
        Customer = customer;
        TicketCursor? after = cursor is not null && TicketCursor.TryDecode(cursor, out var decoded) ? decoded : null;
        Tickets = await customers.TicketsAsync(Id, after, 50, cancellationToken) ?? new([], null);
        return Page();
    }
}
