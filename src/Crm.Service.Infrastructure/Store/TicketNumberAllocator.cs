using Crm.Service.Grains.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Store;

/// <summary>Reserves blocks of ticket numbers from the sequence row in one atomic statement, so numbers stay
/// unique however many silos share the database, and only one in <see cref="StoreOptions.TicketNumberBlock"/>
/// tickets costs a round trip.</summary>
internal sealed class TicketNumberAllocator(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer, IOptions<StoreOptions> options)
    : ITicketNumberAllocator
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private long _next;
    private long _end;

    public async Task<long> NextAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_next >= _end)
                (_next, _end) = await ReserveAsync(options.Value.TicketNumberBlock, cancellationToken);
            return _next++;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<(long Start, long End)> ReserveAsync(int block, CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var end = await db.Database
            .SqlQuery<long>($"UPDATE Sequences SET Next = Next + {block} WHERE Name = 'ticket' RETURNING Next AS Value")
            .ToListAsync(cancellationToken);
        return (end[0] - block, end[0]);
    }
}
