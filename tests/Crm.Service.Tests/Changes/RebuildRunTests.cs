using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.FullTextSearch;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Tests.Support;
using Crm.Service.Tests.Search;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Changes;

/// <summary>
/// An index rebuild's run on a real app: its hold on pruning lasts until the rewound indexer has caught up (LG3), an owe
/// made while the run ends is not missed (LG4), a stop waits for the run and removes its hold (LG5), an owed rebuild that
/// keeps failing is reported and can be retried at once (LG6), and a node's start removes what its killed run left,
/// whatever index folder it has now, and nothing of another node (LG1, LG2).
/// </summary>
public sealed class RebuildRunTests : IDisposable
{
    private readonly TempDirectory _data = new();
    private readonly TempDirectory _other = new();

    public void Dispose()
    {
        _other.Dispose();
        _data.Dispose();
    }

    internal static async Task<List<string>> TicketHitsAsync(HttpClient client, string word)
    {
        var response = await client.GetAsync("/api/v1/search?kind=ticket&q=" + Uri.EscapeDataString(word));
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return [.. body.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("id").GetString()!)];
    }

    /// <summary>An app with one ticket indexed and no rebuild running.</summary>
    private static async Task<(RecordReindexService Rebuilds, ChangeConsumerGates Gates, string Consumer)> ReadyAsync(CrmApp app)
    {
        await app.CreateApiChannelAsync();
        await app.ReceiveAsync("m-1", "alice", "Printer quokka", "first");
        using var search = app.Admin();
        await Eventually.WaitForAsync(() => TicketHitsAsync(search, "quokka"), hits => hits.Count == 1, TimeSpan.FromSeconds(60), "the first ticket indexed");
        var rebuilds = app.Services.GetRequiredService<RecordReindexService>();
        await Eventually.WaitForAsync(() => Task.FromResult(rebuilds.Progress.State), state => state != "running", TimeSpan.FromSeconds(60), "no rebuild running");
        return (rebuilds, app.Services.GetRequiredService<ChangeConsumerGates>(), app.Services.GetRequiredService<RecordIndexer>().Name);
    }

    [Fact]
    public async Task A_rebuilds_hold_stays_until_the_rewound_indexer_has_read_again_up_to_the_swap()
    {
        var gate = new WriteGate();
        await using var app = new CrmApp(_data.Path, PruningNodes.Pruning(), services: services => GatedRecordsIndex.Wrap(services, gate));
        var (rebuilds, _, _) = await ReadyAsync(app);
        gate.HoldBeforeSwap = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Assert.True(rebuilds.TryStart(out var rebuilding));
        await gate.RebuildHeld.Task.WaitAsync(TimeSpan.FromSeconds(60));
        // The indexer cannot write: once the swap rewinds it, it cannot catch up until the gate opens.
        gate.Closed = true;
        var (second, _) = await app.ReceiveAsync("m-2", "bob", "Router zebracorn", "second");
        gate.HoldBeforeSwap.TrySetResult();
        await rebuilding.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("completed", rebuilds.Progress.State);
        // Give a release time to happen: the indexer fails twice more on what it has to read again.
        var refused = Volatile.Read(ref gate.Refused);
        await Eventually.WaitForAsync(() => Task.FromResult(Volatile.Read(ref gate.Refused)), count => count >= refused + 2, TimeSpan.FromSeconds(60), "the indexer to fail again");

        var hold = Assert.Single(await app.QueryAsync(db => db.RebuildHolds.ToListAsync()));
        // At or below where the rebuild began, so before every change of the ticket made during it (review LH8).
        var firstOfSecond = await app.QueryAsync(db => db.Changes.Where(c => c.EntityId == second.ToString()).MinAsync(c => c.Sequence));
        Assert.True(hold.Sequence < firstOfSecond, $"the hold ({hold.Sequence}) must keep the changes the rewound indexer has yet to read (from {firstOfSecond})");

        gate.Closed = false;
        using var search = app.Admin();
        await Eventually.WaitForAsync(() => TicketHitsAsync(search, "zebracorn"), hits => hits.SequenceEqual([RecordIndexer.TicketId(second)]), TimeSpan.FromSeconds(60),
            "the rebuilt index to get the ticket made during the rebuild");
        await Eventually.WaitForAsync(() => app.QueryAsync(db => db.RebuildHolds.CountAsync()), count => count == 0, TimeSpan.FromSeconds(60),
            "the hold to go once the indexer caught up");
    }

    [Fact]
    public async Task A_rewound_indexer_that_never_catches_up_lets_its_hold_expire_and_readiness_says_the_index_is_behind()
    {
        var gate = new WriteGate();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = new CrmApp(_data.Path, PruningNodes.Pruning(), clock, services => GatedRecordsIndex.Wrap(services, gate));
        var (rebuilds, gates, _) = await ReadyAsync(app);
        gate.HoldBeforeSwap = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Assert.True(rebuilds.TryStart(out var rebuilding));
        await gate.RebuildHeld.Task.WaitAsync(TimeSpan.FromSeconds(60));
        // The indexer can never write again (a poison document, a full disk): after the rewind it does not move.
        gate.Closed = true;
        var (second, _) = await app.ReceiveAsync("m-2", "bob", "Router zebracorn", "second");
        gate.HoldBeforeSwap.TrySetResult();
        await rebuilding.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("completed", rebuilds.Progress.State);
        var refused = Volatile.Read(ref gate.Refused);
        await Eventually.WaitForAsync(() => Task.FromResult(Volatile.Read(ref gate.Refused)), count => count >= refused + 2, TimeSpan.FromSeconds(60), "the indexer to fail again");

        // A minute short of the expiry: readiness names the index that is behind, and the hold is still there.
        clock.Advance(gates.HoldExpiry - TimeSpan.FromMinutes(1));
        await Eventually.WaitForAsync(() => Task.FromResult(rebuilds.Degradation), why => why?.Contains("is behind since its rebuild", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(60), "readiness to say the records index is behind");
        using var client = app.CreateClient();
        Assert.Equal("Degraded", await client.GetStringAsync("/health/ready"));
        Assert.Single(await app.QueryAsync(db => db.RebuildHolds.ToListAsync()));

        // Past the expiry: the hold, not refreshed since the indexer last moved, goes, and pruning goes on (review LH1).
        clock.Advance(TimeSpan.FromMinutes(2));
        await Eventually.WaitForAsync(() => app.QueryAsync(db => db.RebuildHolds.CountAsync()), count => count == 0, TimeSpan.FromSeconds(60),
            "pruning to remove the hold of an indexer that does not move");

        gate.Closed = false;
        using var search = app.Admin();
        await Eventually.WaitForAsync(() => TicketHitsAsync(search, "zebracorn"), hits => hits.SequenceEqual([RecordIndexer.TicketId(second)]), TimeSpan.FromSeconds(60),
            "the indexer to catch up once it can write");
        await Eventually.WaitForAsync(() => Task.FromResult(rebuilds.Degradation), why => why is null, TimeSpan.FromSeconds(60), "readiness to stop naming the index");
        await Eventually.WaitForAsync(() => app.QueryAsync(db => db.RebuildHolds.CountAsync()), count => count == 0, TimeSpan.FromSeconds(60), "no hold left");
    }

    [Fact]
    public async Task A_swap_that_fails_after_the_rewind_keeps_the_hold_until_the_indexer_has_read_again_up_to_it()
    {
        var gate = new WriteGate();
        await using var app = new CrmApp(_data.Path, services: services => GatedRecordsIndex.Wrap(services, gate));
        var (rebuilds, _, _) = await ReadyAsync(app);
        gate.HoldBeforeSwap = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Assert.True(rebuilds.TryStart(out var rebuilding));
        await gate.RebuildHeld.Task.WaitAsync(TimeSpan.FromSeconds(60));
        gate.Closed = true;
        Volatile.Write(ref gate.FailNextComplete, 1);
        var (second, _) = await app.ReceiveAsync("m-2", "bob", "Router zebracorn", "second");
        gate.HoldBeforeSwap.TrySetResult();
        await rebuilding.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("failed", rebuilds.Progress.State);
        var refused = Volatile.Read(ref gate.Refused);
        await Eventually.WaitForAsync(() => Task.FromResult(Volatile.Read(ref gate.Refused)), count => count >= refused + 2, TimeSpan.FromSeconds(60), "the rewound indexer to fail again");

        // The cursor was rewound before the swap failed: the old index, still in use, is handed (from, head] again (review LH5).
        Assert.Single(await app.QueryAsync(db => db.RebuildHolds.ToListAsync()));

        gate.Closed = false;
        using var search = app.Admin();
        await Eventually.WaitForAsync(() => TicketHitsAsync(search, "zebracorn"), hits => hits.SequenceEqual([RecordIndexer.TicketId(second)]), TimeSpan.FromSeconds(60),
            "the old index to get the ticket made during the rebuild");
        await Eventually.WaitForAsync(() => app.QueryAsync(db => db.RebuildHolds.CountAsync()), count => count == 0, TimeSpan.FromSeconds(60),
            "the hold to go once the indexer caught up");
    }

    [Fact]
    public async Task A_run_started_just_as_the_previous_one_ends_is_not_marked_ended_by_it()
    {
        var gate = new WriteGate();
        await using var app = new CrmApp(_data.Path, services: services => GatedRecordsIndex.Wrap(services, gate));
        var (rebuilds, _, _) = await ReadyAsync(app);
        Volatile.Write(ref gate.MostActiveRebuilds, 0);
        Task? next = null;
        var hooked = 0;
        rebuilds.AsRunEndsForTests = () =>
        {
            // An admin's POST lands between the run's exit and its finally (review LH4): it starts the next run, which
            // waits before its swap.
            if (Interlocked.Exchange(ref hooked, 1) == 0)
            {
                gate.HoldBeforeSwap = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                if (rebuilds.TryStart(out var started))
                    next = started;
            }
            return Task.CompletedTask;
        };

        Assert.True(rebuilds.TryStart(out var first));
        await first.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.NotNull(next);
        await gate.RebuildHeld.Task.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.False(rebuilds.TryStart(out var running), "the run started as the first one ended is running: no other may start next to it");
        Assert.Same(next, running);
        gate.HoldBeforeSwap!.TrySetResult();
        await next.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, Volatile.Read(ref gate.MostActiveRebuilds));
    }

    [Fact]
    public async Task A_rebuild_owed_just_as_a_run_found_nothing_owed_runs_again()
    {
        var gate = new WriteGate();
        await using var app = new CrmApp(_data.Path, services: services => GatedRecordsIndex.Wrap(services, gate));
        var (rebuilds, gates, consumer) = await ReadyAsync(app);
        var completed = Volatile.Read(ref gate.RebuildsCompleted);
        var owed = 0;
        rebuilds.AfterOwedReadForTests = async () =>
        {
            // The dispatcher finds a pruned hole just after the run read "not owed": it owes a rebuild and asks for one.
            if (Interlocked.Exchange(ref owed, 1) == 0)
                await gates.RebuildAsync(consumer, CancellationToken.None);
        };

        Assert.True(rebuilds.TryStart(out _));

        await Eventually.WaitForAsync(() => Task.FromResult(Volatile.Read(ref gate.RebuildsCompleted) - completed), count => count == 2, TimeSpan.FromSeconds(60),
            "the rebuild owed while the first run was ending to run");
        await Eventually.WaitForAsync(() => gates.AppliedAsync(consumer), applied => applied != ChangeConsumerGates.RebuildOwed, TimeSpan.FromSeconds(60), "the owe to be cleared");
    }

    [Fact]
    public async Task Stopping_the_node_mid_rebuild_waits_for_the_run_and_removes_its_hold()
    {
        var gate = new WriteGate();
        var app = new CrmApp(_data.Path, services: services => GatedRecordsIndex.Wrap(services, gate));
        Task rebuilding;
        try
        {
            var (rebuilds, _, _) = await ReadyAsync(app);
            gate.HoldBeforeSwap = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Assert.True(rebuilds.TryStart(out rebuilding));
            await gate.RebuildHeld.Task.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(1, await app.QueryAsync(db => db.RebuildHolds.CountAsync()));
        }
        finally
        {
            await app.DisposeAsync();
        }

        Assert.True(rebuilding.IsCompleted, "the stop must wait for the run");
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(_data.Path, "crm.db")};Pooling=False");
        await connection.OpenAsync();
        await using var count = connection.CreateCommand();
        count.CommandText = "SELECT COUNT(*) FROM RebuildHolds";
        Assert.Equal(0L, (long)(await count.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task An_owed_rebuild_that_keeps_failing_makes_readiness_degraded_and_a_reindex_request_tries_at_once()
    {
        var gate = new WriteGate();
        await using var app = new CrmApp(_data.Path, services: services => GatedRecordsIndex.Wrap(services, gate));
        var (rebuilds, gates, consumer) = await ReadyAsync(app);
        var begun = Volatile.Read(ref gate.RebuildsBegun);
        gate.FailRebuilds = true;

        await gates.RebuildAsync(consumer, CancellationToken.None);

        using var client = app.CreateClient();
        await Eventually.WaitForAsync(() => client.GetStringAsync("/health/ready"), body => body == "Degraded", TimeSpan.FromSeconds(60),
            "readiness to report the owed rebuild that fails");
        Assert.Contains("records search index", rebuilds.Degradation, StringComparison.Ordinal);
        // Four failures: the wait before the next attempt is 8 s now.
        await Eventually.WaitForAsync(() => Task.FromResult(rebuilds.Progress),
            progress => Volatile.Read(ref gate.RebuildsBegun) - begun >= 4 && progress is { State: "failed", NextAttemptAt: not null },
            TimeSpan.FromSeconds(60), "the rebuild to wait after its fourth failure");

        gate.FailRebuilds = false;
        using var admin = app.Admin();
        var response = await admin.PostAsync("/api/v1/admin/search/reindex", null);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(body.GetProperty("started").GetBoolean(), "a reindex request during the wait must start a run, not answer that one is running");

        await Eventually.WaitForAsync(() => Task.FromResult(rebuilds.Progress.State), state => state == "completed", TimeSpan.FromSeconds(60), "the run to complete");
        await Eventually.WaitForAsync(() => client.GetStringAsync("/health/ready"), answer => answer == "Healthy", TimeSpan.FromSeconds(60), "readiness to recover");
        Assert.Null(rebuilds.Degradation);
    }

    [Fact]
    public async Task A_node_restarted_with_another_index_folder_removes_the_hold_its_killed_run_left_and_no_other_nodes()
    {
        string otherNodes;
        await using (var before = new CrmApp(_data.Path, new Dictionary<string, string?> { ["ChangeFeed:NodeId"] = "node-a" }))
        {
            var gates = before.Services.GetRequiredService<ChangeConsumerGates>();
            // As a run killed mid-rebuild left it, under the consumer name of the folder the node had then.
            await gates.HoldPruningAsync(gates.HoldName("search-records:lucene:/old/folder", "killed"), "search-records:lucene:/old/folder", 0);
            // A run on another node, live.
            otherNodes = "search-records:lucene:/b/folder#rebuilding:node-b:live";
            await before.Services.GetRequiredService<SqliteChangeFeed>().HoldAsync(otherNodes, "search-records:lucene:/b/folder", "node-b", 0, DateTimeOffset.UtcNow, CancellationToken.None);
            Assert.Equal(2, await before.QueryAsync(db => db.RebuildHolds.CountAsync()));
        }

        await using var after = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["ChangeFeed:NodeId"] = "node-a",
            ["Search:RecordsLuceneDirectory"] = Path.Combine(_other.Path, "search-records"),
        });

        await Eventually.WaitForAsync(() => after.QueryAsync(db => db.RebuildHolds.Select(h => h.Name).ToListAsync()), names => names.SequenceEqual([otherNodes]),
            TimeSpan.FromSeconds(60), "node A's start to remove its killed run's hold, and only that");
    }
}

/// <summary>Every node shares an Elasticsearch index: one node rebuilds it at a time, under a lease (review LF4).</summary>
public sealed class SharedIndexRebuildTests : IDisposable
{
    private readonly TempDirectory _data = new();
    private readonly TempDirectory _second = new();

    public void Dispose()
    {
        _second.Dispose();
        _data.Dispose();
    }

    [Fact]
    public async Task Two_nodes_asked_to_rebuild_a_shared_index_rebuild_it_one_after_the_other()
    {
        await using var elastic = await FakeElasticsearch.StartAsync();
        var gate = new WriteGate();
        Dictionary<string, string?> Elastic(string? directory) => new()
        {
            ["Search:Engine"] = "elasticsearch",
            ["Search:Elasticsearch:Url"] = elastic.Url.ToString(),
            ["Connectors:Leases:RetryInterval"] = "00:00:00.100",
            ["Search:LuceneDirectory"] = directory is null ? null : Path.Combine(directory, "search"),
            ["Search:RecordsLuceneDirectory"] = directory is null ? null : Path.Combine(directory, "search-records"),
        };
        await using var a = new CrmApp(_data.Path, Elastic(null), services: services => GatedRecordsIndex.Wrap(services, gate));
        await a.CreateApiChannelAsync();
        await a.ReceiveAsync("m-1", "alice", "Printer quokka", "first");
        await using var b = new CrmApp(_data.Path, Elastic(_second.Path), services: services => GatedRecordsIndex.Wrap(services, gate));
        var onA = a.Services.GetRequiredService<RecordReindexService>();
        var onB = b.Services.GetRequiredService<RecordReindexService>();
        // Each node's start-up check runs off the start path and may start a rebuild of its own: wait until both ran, or
        // that rebuild could begin after the idle check below, take the lease and be the one held before the swap.
        await Task.WhenAll(a.Services.GetRequiredService<RecordIndexer>().StartCheckedTask, b.Services.GetRequiredService<RecordIndexer>().StartCheckedTask)
            .WaitAsync(TimeSpan.FromSeconds(60));
        await Eventually.WaitForAsync(() => Task.FromResult(onA.Progress.State != "running" && onB.Progress.State != "running"), idle => idle, TimeSpan.FromSeconds(60), "no rebuild running");
        var consumer = a.Services.GetRequiredService<RecordIndexer>().Name;
        Assert.Equal(consumer, b.Services.GetRequiredService<RecordIndexer>().Name);
        var begun = Volatile.Read(ref gate.RebuildsBegun);
        Volatile.Write(ref gate.MostActiveRebuilds, 0);
        gate.HoldBeforeSwap = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        Assert.True(onA.TryStart(out var onARunning));
        await gate.RebuildHeld.Task.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(a.Services.GetRequiredService<Crm.Connectors.Abstractions.ConnectorLeases>().Holds("index-rebuild:" + consumer),
            "node A must rebuild the shared index under its lease");
        Assert.True(onB.TryStart(out var onBRunning));
        gate.HoldBeforeSwap.TrySetResult();

        await Task.WhenAll(onARunning, onBRunning).WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal(("completed", "completed"), (onA.Progress.State, onB.Progress.State));
        Assert.Equal(begun + 2, Volatile.Read(ref gate.RebuildsBegun));
        Assert.Equal(1, Volatile.Read(ref gate.MostActiveRebuilds));
    }

    [Fact]
    public async Task Another_nodes_batch_in_flight_across_the_rewind_and_swap_does_not_undo_the_rewind()
    {
        await using var elastic = await FakeElasticsearch.StartAsync();
        var gateA = new WriteGate();
        var gateB = new WriteGate();
        Dictionary<string, string?> Elastic(string? directory) => new()
        {
            ["Search:Engine"] = "elasticsearch",
            ["Search:Elasticsearch:Url"] = elastic.Url.ToString(),
            ["Connectors:Leases:RetryInterval"] = "00:00:00.100",
            ["Search:LuceneDirectory"] = directory is null ? null : Path.Combine(directory, "search"),
            ["Search:RecordsLuceneDirectory"] = directory is null ? null : Path.Combine(directory, "search-records"),
        };
        await using var a = new CrmApp(_data.Path, Elastic(null), services: services => GatedRecordsIndex.Wrap(services, gateA));
        await a.CreateApiChannelAsync();
        await a.ReceiveAsync("m-1", "alice", "Printer quokka", "first");
        await using var b = new CrmApp(_data.Path, Elastic(_second.Path), services: services => GatedRecordsIndex.Wrap(services, gateB));
        var onA = a.Services.GetRequiredService<RecordReindexService>();
        var onB = b.Services.GetRequiredService<RecordReindexService>();
        await Task.WhenAll(a.Services.GetRequiredService<RecordIndexer>().StartCheckedTask, b.Services.GetRequiredService<RecordIndexer>().StartCheckedTask)
            .WaitAsync(TimeSpan.FromSeconds(60));
        await Eventually.WaitForAsync(() => Task.FromResult(onA.Progress.State != "running" && onB.Progress.State != "running"), idle => idle, TimeSpan.FromSeconds(60), "no rebuild running");
        gateA.HoldBeforeSwap = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Assert.True(onA.TryStart(out var rebuilding));
        await gateA.RebuildHeld.Task.WaitAsync(TimeSpan.FromSeconds(60));

        // Only node B's indexer writes; it hands the ticket made now to the old index, and is held before it saves the
        // shared cursor, across A's rewind and swap (review LH2).
        gateA.Closed = true;
        gateB.HoldAfterUpsert = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await a.ReceiveAsync("m-2", "bob", "Router zebracorn", "second");
        await gateB.UpsertHeld.Task.WaitAsync(TimeSpan.FromSeconds(60));
        gateA.HoldBeforeSwap.TrySetResult();
        await rebuilding.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("completed", onA.Progress.State);
        gateB.HoldAfterUpsert.TrySetResult();

        await Eventually.WaitForAsync(() => Task.FromResult(elastic.Documents("crm-records").Values.Count(d => d["kind"]?.GetValue<string>() == "message"
                && d.ToJsonString().Contains("secondm-2", StringComparison.Ordinal))), count => count == 1, TimeSpan.FromSeconds(60),
            "the message made during the rebuild to reach the new index");
    }

    [Fact]
    public async Task Another_nodes_save_between_the_rewind_and_the_swap_is_undone_by_a_second_rewind()
    {
        // Review RA1: node B is not paused by node A's gate. Between A's rewind and its swap, B reads the rewound cursor,
        // writes a new change to the OLD index (the alias still names it) and saves the shared cursor past it. Without a
        // second rewind after the swap, nothing hands that change to the new index.
        await using var elastic = await FakeElasticsearch.StartAsync();
        var gateA = new WriteGate();
        var gateB = new WriteGate();
        Dictionary<string, string?> Elastic(string? directory) => new()
        {
            ["Search:Engine"] = "elasticsearch",
            ["Search:Elasticsearch:Url"] = elastic.Url.ToString(),
            ["Connectors:Leases:RetryInterval"] = "00:00:00.100",
            ["Search:LuceneDirectory"] = directory is null ? null : Path.Combine(directory, "search"),
            ["Search:RecordsLuceneDirectory"] = directory is null ? null : Path.Combine(directory, "search-records"),
        };
        await using var a = new CrmApp(_data.Path, Elastic(null), services: services => GatedRecordsIndex.Wrap(services, gateA));
        await a.CreateApiChannelAsync();
        await a.ReceiveAsync("m-1", "alice", "Printer quokka", "first");
        await using var b = new CrmApp(_data.Path, Elastic(_second.Path), services: services => GatedRecordsIndex.Wrap(services, gateB));
        var onA = a.Services.GetRequiredService<RecordReindexService>();
        var onB = b.Services.GetRequiredService<RecordReindexService>();
        await Task.WhenAll(a.Services.GetRequiredService<RecordIndexer>().StartCheckedTask, b.Services.GetRequiredService<RecordIndexer>().StartCheckedTask)
            .WaitAsync(TimeSpan.FromSeconds(60));
        await Eventually.WaitForAsync(() => Task.FromResult(onA.Progress.State != "running" && onB.Progress.State != "running"), idle => idle, TimeSpan.FromSeconds(60), "no rebuild running");
        var consumer = a.Services.GetRequiredService<RecordIndexer>().Name;
        var gates = a.Services.GetRequiredService<ChangeConsumerGates>();

        // A is held inside the swap: rewound, its own indexer paused, the alias still on the old index.
        gateA.HoldInComplete = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Assert.True(onA.TryStart(out var rebuilding));
        await gateA.CompleteHeld.Task.WaitAsync(TimeSpan.FromSeconds(60));
        await a.ReceiveAsync("m-2", "bob", "Router zebracorn", "second");
        await Eventually.WaitForAsync(() => Task.FromResult(elastic.Documents("crm-records").Values.Any(d => d.ToJsonString().Contains("secondm-2", StringComparison.Ordinal))),
            written => written, TimeSpan.FromSeconds(60), "node B to write the new change to the old index");
        var change = await gates.HeadAsync();
        await Eventually.WaitForAsync(() => gates.CursorAsync(consumer), cursor => cursor >= change, TimeSpan.FromSeconds(60),
            "node B to save the shared cursor past the change");
        gateA.HoldInComplete.TrySetResult();
        await rebuilding.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("completed", onA.Progress.State);

        await Eventually.WaitForAsync(() => Task.FromResult(elastic.Documents("crm-records").Values.Count(d => d["kind"]?.GetValue<string>() == "message"
                && d.ToJsonString().Contains("secondm-2", StringComparison.Ordinal))), count => count == 1, TimeSpan.FromSeconds(60),
            "the message B wrote to the old index between the rewind and the swap to reach the new index");
    }
}
