using Crm.Service.Infrastructure.Changes;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Changes;

/// <summary>
/// A rebuild's hold on pruning is one row per run, named after its node and run, with the time it was last refreshed:
/// a node's start-up removes only its own dead runs' holds, runs on nodes sharing an index never touch each other's,
/// and a hold nobody refreshes any more (its node was killed for good) stops holding pruning (reviews LG1, LG2).
/// </summary>
public sealed class RebuildHoldTests : IDisposable
{
    private readonly TempDirectory _data = new();

    public void Dispose() => _data.Dispose();

    private static Dictionary<string, string?> Node(string id) => new() { ["ChangeFeed:NodeId"] = id };

    [Fact]
    public async Task A_hold_not_refreshed_within_the_expiry_is_removed_and_pruning_goes_on()
    {
        await using var rig = await FeedRig.StartAsync(_data.Path, [], Node("node-a"));
        await rig.CommitTicketsAsync(10);
        var committed = await rig.SequencesAsync();
        await rig.SaveCursorAsync("search", committed[^1]);
        var hold = rig.Gates.HoldName("search", "run-1");
        await rig.Gates.HoldPruningAsync(hold, "search", 0);
        var later = DateTimeOffset.UtcNow.AddDays(1);

        // Refreshed within the expiry: it holds everything and is named.
        var kept = await rig.PruneWithHoldsAsync(["search"], later, DateTimeOffset.UtcNow.AddDays(-1));
        Assert.Equal(0, kept.Deleted);
        Assert.Equal([hold], kept.HeldBackBy);
        Assert.Empty(kept.StaleHolds);

        // As seen two days on, nothing having refreshed it (its node is gone): removed, and pruning goes on.
        var pruned = await rig.PruneWithHoldsAsync(["search"], later, DateTimeOffset.UtcNow.AddDays(2) - TimeSpan.FromDays(1));
        Assert.Equal([hold], pruned.StaleHolds);
        Assert.Equal(10, pruned.Deleted);
        Assert.Empty(pruned.HeldBackBy);
        Assert.Empty(await rig.Gates.HoldsAsync());
    }

    [Fact]
    public async Task A_hold_is_refreshed_and_raised_but_never_lowered()
    {
        await using var rig = await FeedRig.StartAsync(_data.Path, [], Node("node-a"));
        var hold = rig.Gates.HoldName("search", "run-1");
        await rig.Gates.HoldPruningAsync(hold, "search", 5);
        var before = (await rig.Gates.HoldsAsync()).Single();

        Assert.True(await rig.Gates.RefreshHoldAsync(hold, 3));
        Assert.Equal(5, (await rig.Gates.HoldsAsync()).Single().Sequence);
        Assert.True(await rig.Gates.RefreshHoldAsync(hold, 9));
        var after = (await rig.Gates.HoldsAsync()).Single();
        Assert.Equal(9, after.Sequence);
        Assert.True(after.Since >= before.Since);
        await rig.Gates.ReleaseHoldAsync(hold);
        Assert.False(await rig.Gates.RefreshHoldAsync(hold, 10));
    }

    [Fact]
    public async Task Runs_on_nodes_sharing_one_index_keep_their_own_holds_and_a_start_up_removes_only_its_own_nodes_dead_ones()
    {
        // One shared consumer name, as every node has for an Elasticsearch index.
        const string Shared = "search-records:elasticsearch:es:9200/crm-records";
        await using var a = await FeedRig.StartAsync(_data.Path, [], Node("node-a"));
        await a.CommitTicketsAsync(10);
        var committed = await a.SequencesAsync();
        await a.SaveCursorAsync(Shared, committed[^1]);
        var holdOfA = a.Gates.HoldName(Shared, "run-a");
        await a.Gates.HoldPruningAsync(holdOfA, Shared, committed[2]);
        string deadHoldOfB;
        await using (var killedB = await FeedRig.StartAsync(_data.Path, [], Node("node-b")))
        {
            deadHoldOfB = killedB.Gates.HoldName(Shared, "run-old");
            await killedB.Gates.HoldPruningAsync(deadHoldOfB, Shared, committed[6]);
        }

        // Node B comes back and starts a run of its own before its start-up clean-up.
        await using var b = await FeedRig.StartAsync(_data.Path, [], Node("node-b"));
        var holdOfB = b.Gates.HoldName(Shared, "run-b");
        await b.Gates.HoldPruningAsync(holdOfB, Shared, committed[8]);
        Assert.Equal([deadHoldOfB], await b.Gates.ReleaseNodeHoldsAsync());

        Assert.Equal([holdOfA, holdOfB], (await a.Gates.HoldsAsync()).Select(h => h.Name).Order(StringComparer.Ordinal));
        // The lowest live hold bounds pruning, and the other run's release leaves it.
        Assert.Equal(3, await a.PruneAsync([Shared], DateTimeOffset.UtcNow.AddDays(1)));
        await b.Gates.ReleaseHoldAsync(holdOfB);
        Assert.Equal(0, await a.PruneAsync([Shared], DateTimeOffset.UtcNow.AddDays(1)));
        Assert.Equal([holdOfA], (await a.Gates.HoldsAsync()).Select(h => h.Name));
    }

    [Fact]
    public async Task A_start_up_clean_up_leaves_a_hold_this_process_wrote_after_it_read_which_holds_are_live()
    {
        await using var rig = await FeedRig.StartAsync(_data.Path, [], Node("node-a"));
        await rig.CommitTicketsAsync(3);
        var committed = await rig.SequencesAsync();
        var live = rig.Gates.HoldName("search-records:lucene:/a", "run-records");
        // The other index's rebuild writes its hold while the articles' clean-up is between its snapshot and its read (review LH3).
        rig.Gates.AfterLiveSnapshotForTests = () => rig.Gates.HoldPruningAsync(live, "search-records:lucene:/a", committed[0]);

        Assert.Empty(await rig.Gates.ReleaseNodeHoldsAsync());

        Assert.Equal([live], (await rig.Gates.HoldsAsync()).Select(h => h.Name));
    }

    [Fact]
    public async Task A_cursor_save_of_a_batch_read_before_a_rebuilds_rewind_is_refused_and_the_rewind_stands()
    {
        // Another node's dispatcher read the shared cursor and its rewind count, then handed a batch to the old index
        // while this node's rebuild rewound the cursor and swapped (review LH2).
        const string Shared = "search-records:elasticsearch:es:9200/crm-records";
        await using var rig = await FeedRig.StartAsync(_data.Path, [], Node("node-a"));
        await rig.CommitTicketsAsync(10);
        var committed = await rig.SequencesAsync();
        await rig.SaveCursorAsync(Shared, committed[5]);
        var readBefore = await rig.RewindsAsync(Shared);

        await using (var pause = await rig.Gates.PauseAsync(Shared))
            await pause.RewindAsync(committed[2]);

        Assert.False(await rig.SaveCursorAsync(Shared, committed[^1], readBefore), "a save under the count read before the rewind must be refused");
        Assert.Equal(committed[2], await rig.CursorAsync(Shared));
        // Read again, the count lets the batch's save through.
        Assert.True(await rig.SaveCursorAsync(Shared, committed[^1], await rig.RewindsAsync(Shared)));
        Assert.Equal(committed[^1], await rig.CursorAsync(Shared));
    }

    [Theory]
    [InlineData("07:00:00:00", "07:00:00:00")]
    [InlineData("01:00:00", "1.00:00:00")]
    public void A_hold_expires_after_the_retention_or_a_day_whichever_is_longer(string retention, string expiry)
    {
        var options = new ChangeFeedOptions { Retention = TimeSpan.Parse(retention, System.Globalization.CultureInfo.InvariantCulture) };
        Assert.Equal(TimeSpan.Parse(expiry, System.Globalization.CultureInfo.InvariantCulture), options.RebuildHoldExpiry);
    }
}
