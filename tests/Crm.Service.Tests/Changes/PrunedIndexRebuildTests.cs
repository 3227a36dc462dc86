using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.FullTextSearch;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Changes;

/// <summary>
/// A node's Lucene index keeps a saved cursor of its own, which another node's pruning does not hold back. When that
/// node prunes past it, the index must notice the hole and be rebuilt from the store: otherwise it quietly misses the
/// pruned changes (a new ticket never findable there, an unpublished article still served) (review LE1).
/// </summary>
public sealed class PrunedIndexRebuildTests : IDisposable
{
    private readonly TempDirectory _data = new();
    private readonly TempDirectory _second = new();

    public void Dispose()
    {
        _second.Dispose();
        _data.Dispose();
    }

    private static Dictionary<string, string?> Pruning(params (string Key, string? Value)[] more)
    {
        var settings = new Dictionary<string, string?>
        {
            // As short as start-up validation allows (retention >= poll + longest retry wait), so node A prunes at once.
            ["ChangeFeed:Retention"] = "00:00:00.100",
            ["ChangeFeed:PollInterval"] = "00:00:00.050",
            ["ChangeFeed:MaxRetryDelay"] = "00:00:00.050",
            ["ChangeFeed:PruneInterval"] = "00:00:00.050",
        };
        foreach (var (key, value) in more)
            settings[key] = value;
        return settings;
    }

    private static async Task<List<string>> TicketHitsAsync(HttpClient client, string word)
    {
        var response = await client.GetAsync("/api/v1/search?kind=ticket&q=" + Uri.EscapeDataString(word));
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return [.. body.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("id").GetString()!)];
    }

    [Fact]
    public async Task A_node_whose_index_cursor_was_pruned_past_by_another_node_rebuilds_its_index()
    {
        await using var a = new CrmApp(_data.Path, Pruning());
        await a.CreateApiChannelAsync();
        await a.ReceiveAsync("m-1", "alice", "Printer quokka", "first");
        await using var b = new CrmApp(_data.Path, Pruning(
            // Node B reads the feed only when its own commit wakes it.
            ("ChangeFeed:PollInterval", "01:00:00"), ("ChangeFeed:Retention", "02:00:00"),
            ("Search:LuceneDirectory", Path.Combine(_second.Path, "search")),
            ("Search:RecordsLuceneDirectory", Path.Combine(_second.Path, "search-records"))));
        using var searchOnB = b.Admin();
        // B's index starts empty on a store with records, so it is rebuilt at its start and then has a cursor of its own.
        await Eventually.WaitForAsync(() => TicketHitsAsync(searchOnB, "quokka"), hits => hits.Count == 1, TimeSpan.FromSeconds(60), "node B's index to be built at its start");
        var cursors = await a.QueryAsync(db => db.ChangeCursors.Select(c => c.Consumer + "=" + c.Sequence).ToListAsync());
        var cursorsOfB = await a.QueryAsync(db => db.ChangeCursors.Where(c => c.Consumer.StartsWith("search-records:") && c.Consumer.Contains(_second.Path) && !c.Consumer.EndsWith("#applied")).Select(c => c.Sequence).ToListAsync());
        Assert.True(cursorsOfB.Count == 1 && cursorsOfB[0] > 0, "node B's records index must have a saved cursor, or this test proves nothing about one: " + string.Join(", ", cursors));

        var (second, _) = await a.ReceiveAsync("m-2", "bob", "Router zebracorn", "second");
        await Eventually.WaitForAsync(() => a.QueryAsync(db => db.Changes.CountAsync(c => c.Entity == "ticket" && c.EntityId == second.ToString())),
            count => count == 0, TimeSpan.FromSeconds(60), "node A to prune the new ticket's changes");
        Assert.Empty(await TicketHitsAsync(searchOnB, "zebracorn"));

        // A commit on node B wakes its indexer; the first change it reads is past a hole.
        await b.CreateApiChannelAsync("other");

        await Eventually.WaitForAsync(() => TicketHitsAsync(searchOnB, "zebracorn"), hits => hits.SequenceEqual([RecordIndexer.TicketId(second)]), TimeSpan.FromSeconds(60),
            "node B to rebuild its records index after the hole and find the ticket made and pruned on node A");
    }
}
