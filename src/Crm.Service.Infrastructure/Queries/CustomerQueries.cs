using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Queries;

/// <summary>The read side of customers: the profile with its identities, and the customer's tickets.</summary>
public sealed class CustomerQueries(IDbContextFactory<CrmDbContext> contexts, TicketQueries tickets)
{
    public async Task<CustomerView?> GetAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var customer = await db.Customers.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id, cancellationToken);
        if (customer is null)
            return null;
        var identities = await db.Identities.AsNoTracking().Where(i => i.CustomerId == id).ToListAsync(cancellationToken);
        return new CustomerView
        {
            Id = customer.Id,
            Name = customer.Name,
            Language = customer.Language,
            Organization = customer.Organization,
            Tags = [.. customer.Tags],
            Notes = customer.Notes,
            CustomFields = new Dictionary<string, string>(customer.CustomFields),
            Identities = identities.OrderBy(i => i.LinkedAt).ThenBy(i => i.Key, StringComparer.Ordinal)
                .Select(i => new IdentityView(i.Key, i.Kind, i.Value, i.LinkedAt)).ToList(),
            MergedInto = customer.MergedInto,
            CreatedAt = customer.CreatedAt,
            UpdatedAt = customer.UpdatedAt,
        };
    }

    /// <summary>The customer's tickets, most recent activity first; null if there is no such customer.</summary>
    public async Task<Page<TicketView>?> TicketsAsync(Guid id, TicketCursor? after, int pageSize, CancellationToken cancellationToken, IReadOnlyList<string>? hiddenTeams = null)
    {
        await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
        {
            if (!await db.Customers.AnyAsync(c => c.Id == id, cancellationToken))
                return null;
        }
        return await tickets.ListAsync(new TicketFilter { CustomerId = id, HiddenTeams = hiddenTeams }, after, pageSize, cancellationToken);
    }
}
