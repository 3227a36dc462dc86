using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.Store;
using Crm.Service.KnowledgeBase;
using Crm.Service.Search;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.FullTextSearch;

/// <summary>
/// Rebuilds the records index (tickets, messages, customers) from the store, the way <see cref="ReindexService"/>
/// rebuilds the articles (<see cref="IndexRebuildService"/>). On start it rebuilds by itself when the store holds
/// records and the index is empty, has no cursor of its own (the first start with this index, e.g. after an upgrade:
/// the feed may no longer hold the old records' changes), the feed was pruned past its cursor, or the index's version
/// marker is behind the store.
/// </summary>
public sealed class RecordReindexService(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer, RecordIndexer indexer, IChangeFeed feed,
    ChangeConsumerGates gates, Crm.Connectors.Abstractions.ConnectorLeases leases, TimeProvider time, ILogger<RecordReindexService> logger)
    : IndexRebuildService(indexer.Index, indexer.Name, indexer.StartChecked, feed, gates, leases, time, logger)
{
    protected override string IndexName => "records search index";

    protected override string ReindexEndpoint => "/api/v1/admin/search/reindex";

    protected override Task BeforeRebuildAsync(CancellationToken cancellationToken) => initializer.EnsureInitializedAsync(cancellationToken);

    protected override async Task<int> CountAsync(CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Tickets.CountAsync(cancellationToken) + await db.Messages.CountAsync(cancellationToken) + await db.Customers.CountAsync(cancellationToken);
    }

    /// <summary>Every ticket, message (with its ticket's team) and customer, in pages, each read along its key.</summary>
    protected override async IAsyncEnumerable<IReadOnlyList<SearchDocument>> PagesAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        long afterTicket = 0;
        while (true)
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            var page = await db.Tickets.AsNoTracking().Where(t => t.Number > afterTicket).OrderBy(t => t.Number).Take(PageSize).ToListAsync(cancellationToken);
            if (page.Count == 0)
                break;
            afterTicket = page[^1].Number;
            yield return [.. page.Select(RecordIndexer.ToDocument)];
        }
        Guid? afterMessage = null;
        while (true)
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            var query = db.Messages.AsNoTracking();
            if (afterMessage is { } last)
                query = query.Where(m => m.Id.CompareTo(last) > 0);
            var page = await RecordIndexer.MessagesWithTeamsAsync(query.OrderBy(m => m.Id).Take(PageSize), db, cancellationToken);
            if (page.Count == 0)
                break;
            afterMessage = page[^1].Message.Id;
            yield return [.. page.Select(m => RecordIndexer.ToDocument(m.Message, m.Team))];
        }
        Guid? afterCustomer = null;
        while (true)
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            var query = db.Customers.AsNoTracking();
            if (afterCustomer is { } last)
                query = query.Where(c => c.Id.CompareTo(last) > 0);
            var page = await RecordIndexer.CustomersWithIdentitiesAsync(query.OrderBy(c => c.Id).Take(PageSize), db, cancellationToken);
            if (page.Count == 0)
                break;
            afterCustomer = page[^1].Customer.Id;
            yield return [.. page.Where(c => c.Customer.MergedInto is null).Select(c => RecordIndexer.ToDocument(c.Customer, c.Identities))];
        }
    }

    protected override async Task<string?> RebuildReasonAsync(CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        var recorded = await Gates.AppliedAsync(ConsumerName, cancellationToken);
        if (recorded == ChangeConsumerGates.RebuildOwed)
            return "A rebuild of the records search index found necessary earlier has not completed";
        await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
        {
            if (!await db.Tickets.AnyAsync(cancellationToken) && !await db.Customers.AnyAsync(cancellationToken))
                return null;
        }
        return await CommonRebuildReasonAsync(_ => Task.FromResult(recorded), cancellationToken);
    }
}
