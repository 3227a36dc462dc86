using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Documents;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Console;

/// <summary>console7: what the store keeps in order by itself: leftovers of customer merges from before merges carried a
/// customer's events, calls and documents; request keys pruned after their retention; links that are one row per pair
/// and live on both tickets (reviews CT7, CT15).</summary>
public sealed class ConsoleStoreUpkeepTests
{
    private static object Event(string id, string title) => new { eventId = id, type = "order.placed", time = DateTimeOffset.UtcNow.AddMinutes(-1), title };

    [Fact]
    public async Task Events_calls_and_documents_left_on_customers_merged_before_merges_moved_them_move_to_the_surviving_customer_at_start()
    {
        using var data = new TempDirectory();
        Guid ann, bob, cid;
        await using (var before = new CrmApp(data.Path))
        {
            await before.CreateApiChannelAsync();
            (_, ann) = await before.ReceiveAsync("up-1", "ann");
            (_, bob) = await before.ReceiveAsync("up-2", "bob");
            (_, cid) = await before.ReceiveAsync("up-3", "cid");
            using var agent = await before.AgentAsync();
            // Bob's order, Bob's call; the same order id posted to Ann too; Cid's order.
            Assert.Equal(HttpStatusCode.Created, (await agent.PostAsJsonAsync($"/api/v1/customers/{bob}/events", Event("order-1", "Bob's order"))).StatusCode);
            Assert.Equal(HttpStatusCode.Created, (await agent.PostAsJsonAsync($"/api/v1/customers/{ann}/events", Event("order-1", "Ann's order"))).StatusCode);
            Assert.Equal(HttpStatusCode.Created, (await agent.PostAsJsonAsync($"/api/v1/customers/{bob}/calls", new { direction = "in", phone = "+15550107777" })).StatusCode);
            Assert.Equal(HttpStatusCode.Created, (await agent.PostAsJsonAsync($"/api/v1/customers/{cid}/events", Event("order-9", "Cid's order"))).StatusCode);
            // The old shape: Bob merged into Ann, Cid into Bob, each row left where it was, and no marker of the fix-up.
            await before.QueryAsync(async db =>
            {
                db.CustomerDocuments.Add(new CustomerDocumentRecord
                {
                    Id = Guid.NewGuid(), CustomerId = bob, FileName = "contract.pdf", ContentType = "application/pdf", Length = 3,
                    Sha256 = new string('a', 64), UploadedBy = "user:x", UploadedAt = DateTimeOffset.UtcNow,
                });
                await db.SaveChangesAsync();
                await db.Customers.Where(c => c.Id == bob).ExecuteUpdateAsync(s => s.SetProperty(c => c.MergedInto, ann));
                await db.Customers.Where(c => c.Id == cid).ExecuteUpdateAsync(s => s.SetProperty(c => c.MergedInto, bob));
                return await db.Sequences.Where(s => s.Name == MergedCustomerContent.Marker).ExecuteDeleteAsync();
            });
        }

        await using var app = new CrmApp(data.Path);
        using var api = await app.AgentAsync();
        async Task<List<string>> EventIdsAsync(Guid customer) => [.. (await app.QueryAsync(db => db.CustomerEvents.Where(e => e.CustomerId == customer)
            .Select(e => e.ClientEventId).ToListAsync())).Order(StringComparer.Ordinal)];
        var annIds = await EventIdsAsync(ann);
        Assert.Equal(4, annIds.Count);
        Assert.Contains("order-1", annIds);
        Assert.Contains("order-1@merged:" + bob.ToString("N"), annIds);
        Assert.Contains("order-9", annIds);
        Assert.Single(annIds, id => id.StartsWith("call:", StringComparison.Ordinal));
        Assert.Empty(await EventIdsAsync(bob));
        Assert.Empty(await EventIdsAsync(cid));
        Assert.Equal(ann, await app.QueryAsync(db => db.CustomerDocuments.Select(d => d.CustomerId).SingleAsync()));
        var listed = await api.GetFromJsonAsync<JsonElement>($"/api/v1/customers/{ann}/events");
        Assert.Contains("Cid's order", listed.ToString(), StringComparison.Ordinal);

        // Idempotent: run again (marker gone, as after a crash before its commit), nothing moves or changes.
        await app.QueryAsync(async db =>
        {
            await db.Sequences.Where(s => s.Name == MergedCustomerContent.Marker).ExecuteDeleteAsync();
            await MergedCustomerContent.MoveLeftoversAsync(db);
            return 0;
        });
        Assert.Equal(annIds, await EventIdsAsync(ann));
        Assert.True(await app.QueryAsync(db => db.Sequences.AnyAsync(s => s.Name == MergedCustomerContent.Marker)));

        // Review CR2: two nodes starting at once on a store without the marker both passed the check made before the
        // transaction; the second then failed on the marker's key, and its start with it. Here the other node commits the
        // fix-up (its marker) just as this one begins its transaction: this run completes and moves nothing twice.
        await app.QueryAsync(db => db.Sequences.Where(s => s.Name == MergedCustomerContent.Marker).ExecuteDeleteAsync());
        var connection = new StoreOptions { DataDirectory = data.Path }.ConnectionString;
        await using (var late = new CrmDbContext(new DbContextOptionsBuilder<CrmDbContext>().UseSqlite(connection)
            .AddInterceptors(new OtherNodeRanFirst(connection)).Options))
            await MergedCustomerContent.MoveLeftoversAsync(late);
        Assert.Equal(annIds, await EventIdsAsync(ann));
        Assert.Equal(1, await app.QueryAsync(db => db.Sequences.CountAsync(s => s.Name == MergedCustomerContent.Marker)));
    }

    /// <summary>When this context starts a transaction, another "node" has just committed the fix-up's marker.</summary>
    private sealed class OtherNodeRanFirst(string connection) : Microsoft.EntityFrameworkCore.Diagnostics.DbTransactionInterceptor
    {
        public override async ValueTask<Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult<System.Data.Common.DbTransaction>> TransactionStartingAsync(
            System.Data.Common.DbConnection connection1, Microsoft.EntityFrameworkCore.Diagnostics.TransactionStartingEventData eventData,
            Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult<System.Data.Common.DbTransaction> result, CancellationToken cancellationToken = default)
        {
            await using var other = new CrmDbContext(new DbContextOptionsBuilder<CrmDbContext>().UseSqlite(connection).Options);
            await MergedCustomerContent.MoveLeftoversAsync(other, cancellationToken);
            return result;
        }
    }

    [Fact]
    public async Task Request_keys_older_than_the_retention_are_pruned_and_newer_ones_kept()
    {
        using var data = new TempDirectory();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?>
        {
            ["RequestKeys:Retention"] = "2.00:00:00",
            ["RequestKeys:PruneInterval"] = "00:00:10",
        }, clock);
        await app.CreateApiChannelAsync();
        var now = clock.GetUtcNow();
        await app.QueryAsync(db =>
        {
            db.RequestKeys.AddRange(
                new RequestKeyRecord { Key = "old-macro-step", TicketNumber = 1, At = now - TimeSpan.FromDays(3) },
                new RequestKeyRecord { Key = "old-call", At = now - TimeSpan.FromDays(2) - TimeSpan.FromSeconds(1) },
                new RequestKeyRecord { Key = "recent", TicketNumber = 1, At = now - TimeSpan.FromDays(1) });
            return db.SaveChangesAsync();
        });
        async Task<List<string>> KeysAsync() => [.. (await app.QueryAsync(db => db.RequestKeys.Select(k => k.Key).ToListAsync())).Order(StringComparer.Ordinal)];

        // The background service deletes on its interval (of the app's clock, moved on here while waiting).
        var kept = await Eventually.WaitForAsync(async () =>
        {
            clock.Advance(TimeSpan.FromSeconds(10));
            return await KeysAsync();
        }, keys => !keys.Contains("old-call") && !keys.Contains("old-macro-step"), TimeSpan.FromSeconds(60), "old request keys pruned");
        Assert.Contains("recent", kept);

        // Chunked deletes reach every old key, and only old keys.
        var bound = clock.GetUtcNow() - TimeSpan.FromDays(2);
        await app.QueryAsync(db =>
        {
            db.RequestKeys.AddRange(Enumerable.Range(0, 12_000).Select(i => new RequestKeyRecord { Key = $"bulk-{i}", At = bound - TimeSpan.FromMinutes(1) }));
            return db.SaveChangesAsync();
        });
        Assert.Equal(12_000, await app.QueryAsync(db => RequestKeyPruning.PruneAsync(db, bound)));
        Assert.Contains("recent", await KeysAsync());
        Assert.DoesNotContain(await KeysAsync(), k => k.StartsWith("bulk-", StringComparison.Ordinal));

        // Review CR5: the chunk select finds old keys through an index on At, not by scanning the table per chunk.
        var plan = await app.QueryAsync(async db =>
        {
            var sql = db.RequestKeys.AsNoTracking().Where(k => k.At < bound).Select(k => k.Key).Take(5_000).ToQueryString();
            var connection = db.Database.GetDbConnection();
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            // ToQueryString declares the parameters ahead of the statement; only the statement itself is explained.
            command.CommandText = "EXPLAIN QUERY PLAN " + sql[sql.IndexOf("SELECT", StringComparison.Ordinal)..].Replace("@__bound_0", "'x'").Replace("@__p_1", "5000");
            var rows = new List<string>();
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                rows.Add(reader.GetString(3));
            return rows;
        });
        Assert.Contains(plan, row => row.Contains("IX_RequestKeys_At", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Opposite_links_racing_on_one_pair_store_one_row_and_a_link_is_a_change_of_both_tickets()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await app.CreateApiChannelAsync();
        using var agent = await app.AgentAsync();
        var pairs = new List<(long A, long B)>();
        for (var i = 0; i < 12; i++)
            pairs.Add(((await app.ReceiveAsync($"race-a-{i}", $"racer{i}")).Number, (await app.ReceiveAsync($"race-b-{i}", $"other{i}")).Number));

        // "A related B" against "B duplicate of A" (and, for odd pairs, "A dup B" against "B dup A"), all at once.
        var answers = await Task.WhenAll(pairs.Select(async (p, i) => await Task.WhenAll(
            agent.PostAsJsonAsync($"/api/v1/tickets/{p.A}/links", new { ticket = p.B, relation = i % 2 == 0 ? "related" : "duplicate" }),
            agent.PostAsJsonAsync($"/api/v1/tickets/{p.B}/links", new { ticket = p.A, relation = "duplicate" }))));
        for (var i = 0; i < pairs.Count; i++)
        {
            var (a, b) = pairs[i];
            Assert.Equal(1, await app.QueryAsync(db => db.TicketLinks.CountAsync(l => (l.From == a && l.To == b) || (l.From == b && l.To == a))));
            Assert.Equal([HttpStatusCode.Created, HttpStatusCode.Conflict], answers[i].Select(r => r.StatusCode).Order());
        }

        // Linking and unlinking write a "ticket updated" change for both tickets, so both are live on every node.
        var (x, y) = pairs[0];
        async Task<long> LastChangeAsync(long number) => await app.QueryAsync(db => db.Changes
            .Where(c => c.Entity == ChangeEntities.Ticket && c.EntityId == number.ToString() && c.Kind == ChangeKinds.Updated)
            .Select(c => (long?)c.Sequence).MaxAsync()) ?? 0;
        var before = await app.QueryAsync(db => db.Changes.Select(c => (long?)c.Sequence).MaxAsync()) ?? 0;
        Assert.Equal(HttpStatusCode.NoContent, (await agent.DeleteAsync($"/api/v1/tickets/{x}/links/{y}")).StatusCode);
        Assert.True(await LastChangeAsync(x) > before);
        Assert.True(await LastChangeAsync(y) > before);
        before = await app.QueryAsync(db => db.Changes.Select(c => (long?)c.Sequence).MaxAsync()) ?? 0;
        Assert.Equal(HttpStatusCode.Created, (await agent.PostAsJsonAsync($"/api/v1/tickets/{y}/links", new { ticket = x, relation = "related" })).StatusCode);
        Assert.True(await LastChangeAsync(x) > before);
        Assert.True(await LastChangeAsync(y) > before);
    }
}
