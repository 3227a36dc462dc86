using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Changes;

public sealed class ChangeFeedDispatcherTests : IDisposable
{
    private readonly TempDirectory _data = new("crm-feed");

    public void Dispose() => _data.Dispose();

    [Fact]
    public async Task Every_consumer_gets_every_change_once_in_sequence_order_in_batches()
    {
        var first = new RecordingConsumer("first");
        var second = new RecordingConsumer("second");
        await using var rig = await FeedRig.StartAsync(_data.Path, [first, second], new Dictionary<string, string?> { ["ChangeFeed:BatchSize"] = "7" });

        // Grouped commits, then one at a time.
        await rig.CommitTicketsAsync(30);
        for (var i = 0; i < 30; i++)
            await rig.CommitTicketsAsync(1);

        var committed = await rig.SequencesAsync();
        Assert.Equal(60, committed.Count);
        foreach (var consumer in new[] { first, second })
        {
            await Eventually.WaitForAsync(() => Task.FromResult(consumer.Sequences.Count), n => n >= committed.Count, what: $"{consumer.Name} to get 60 changes");
            Assert.Equal(committed, consumer.Sequences);
            Assert.All(consumer.Batches, batch => Assert.InRange(batch.Count, 1, 7));
            await Eventually.WaitForAsync(() => rig.CursorAsync(consumer.Name), cursor => cursor == committed[^1], what: $"{consumer.Name}'s cursor at the last change");
        }
    }

    [Fact]
    public async Task A_consumer_that_throws_gets_the_same_changes_again_while_the_others_progress()
    {
        var failing = true;
        var flaky = new RecordingConsumer("flaky")
        {
            Handle = (_, _) => Volatile.Read(ref failing) ? throw new InvalidOperationException("index unavailable") : Task.CompletedTask,
        };
        var healthy = new RecordingConsumer("healthy");
        await using var rig = await FeedRig.StartAsync(_data.Path, [flaky, healthy]);

        await rig.CommitTicketsAsync(10);
        var committed = await rig.SequencesAsync();
        await Eventually.WaitForAsync(() => Task.FromResult(healthy.Sequences.Count), n => n == 10, what: "the healthy consumer to get all changes");
        await Eventually.WaitForAsync(() => Task.FromResult(flaky.AttemptStarts.Count), n => n >= 3, what: "three failed attempts");
        Assert.Empty(flaky.Batches);
        Assert.Equal(0, await rig.CursorAsync("flaky"));
        // The cursor is saved after HandleAsync returns.
        await Eventually.WaitForAsync(() => rig.CursorAsync("healthy"), c => c == committed[^1], what: "healthy's cursor at the last change");

        Volatile.Write(ref failing, false);
        await Eventually.WaitForAsync(() => Task.FromResult(flaky.Sequences.Count), n => n == 10, what: "the recovered consumer to get all changes");
        Assert.Equal(committed, flaky.Sequences);
        // Every attempt, failed or not, started where the cursor stood.
        Assert.All(flaky.AttemptStarts.Take(flaky.AttemptStarts.Count - flaky.Batches.Count + 1), start => Assert.Equal(committed[0], start));

        await rig.CommitTicketsAsync(5);
        var all = await rig.SequencesAsync();
        await Eventually.WaitForAsync(() => Task.FromResult(flaky.Sequences.Count), n => n == 15, what: "later changes after the recovery");
        Assert.Equal(all, flaky.Sequences);
        await Eventually.WaitForAsync(() => Task.FromResult(healthy.Sequences.Count), n => n == 15, what: "later changes for the healthy consumer");
        Assert.Equal(all, healthy.Sequences);
    }

    [Fact]
    public async Task A_commit_wakes_an_idle_consumer_without_waiting_for_the_poll()
    {
        var consumer = new RecordingConsumer("live");
        // With an hour between polls, only the commit signal can deliver within the test's patience.
        await using var rig = await FeedRig.StartAsync(_data.Path, [consumer], new Dictionary<string, string?> { ["ChangeFeed:PollInterval"] = "01:00:00" });
        await rig.CommitTicketsAsync(1);
        await Eventually.WaitForAsync(() => Task.FromResult(consumer.Sequences.Count), n => n == 1, what: "the first change");

        for (var expected = 2; expected <= 4; expected++)
        {
            await rig.CommitTicketsAsync(1);
            await Eventually.WaitForAsync(() => Task.FromResult(consumer.Sequences.Count), n => n == expected, TimeSpan.FromSeconds(20), what: $"change {expected} after its commit");
        }
    }

    [Fact]
    public async Task Consumers_keep_going_when_the_injected_clock_stands_still()
    {
        // Tests drive business time with a FakeTimeProvider that nobody advances; the dispatcher's gather delay, poll and
        // backoff pace the plumbing and must not wait on it, or every consumer stalls after its first batch.
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var failOnce = 1;
        var consumer = new RecordingConsumer("frozen-clock")
        {
            Handle = (_, _) => Interlocked.Exchange(ref failOnce, 0) == 1 ? throw new InvalidOperationException("first attempt fails") : Task.CompletedTask,
        };
        await using var rig = await FeedRig.StartAsync(_data.Path, [consumer], new Dictionary<string, string?> { ["ChangeFeed:GatherDelay"] = "00:00:00.050" }, clock);
        for (var expected = 1; expected <= 4; expected++)
        {
            await rig.CommitTicketsAsync(1);
            await Eventually.WaitForAsync(() => Task.FromResult(consumer.Sequences.Count), n => n == expected, what: $"change {expected} with the clock stopped");
        }
        Assert.Equal(await rig.SequencesAsync(), consumer.Sequences);
    }

    [Fact]
    public async Task Stopping_cancels_a_consumer_mid_batch_and_leaves_its_cursor()
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sawCancellation = false;
        var consumer = new RecordingConsumer("slow")
        {
            Handle = async (_, cancellationToken) =>
            {
                entered.TrySetResult();
                try
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    sawCancellation = true;
                    throw;
                }
            },
        };
        await using var rig = await FeedRig.StartAsync(_data.Path, [consumer]);
        await rig.CommitTicketsAsync(3);
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(30));

        await rig.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(sawCancellation);
        Assert.Empty(consumer.Batches);
        Assert.Equal(0, await rig.CursorAsync("slow"));
    }

    [Fact]
    public async Task Consumers_sharing_a_name_stop_start_up()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            FeedRig.StartAsync(_data.Path, [new RecordingConsumer("search"), new RecordingConsumer("search")]));
        Assert.Contains("'search'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_consumer_with_no_state_to_reload_goes_on_with_the_changes_kept_after_a_pruned_hole()
    {
        List<long> committed;
        await using (var setup = await FeedRig.StartAsync(_data.Path, []))
        {
            await setup.CommitTicketsAsync(10);
            committed = await setup.SequencesAsync();
            await setup.SaveCursorAsync("a", committed[4]);
            await setup.SaveCursorAsync("x", committed[6]);
            // Pruning that does not know "a" (another node's) deletes past its cursor.
            Assert.Equal(7, await setup.PruneAsync(["x"], DateTimeOffset.UtcNow.AddDays(1)));
        }
        var behind = new RecordingConsumer("a");
        var late = new RecordingConsumer("late");

        await using var rig = await FeedRig.StartAsync(_data.Path, [behind, late]);

        // SLA, assignment and the journal have no state to reload: skipping to the head would lose what is still kept (review LF1).
        await Eventually.WaitForAsync(() => Task.FromResult(behind.Sequences.Count + late.Sequences.Count), count => count >= 6, what: "both consumers to get the kept changes");
        Assert.Equal(committed[7..], behind.Sequences);
        Assert.Equal(committed[7..], late.Sequences);
    }

    [Fact]
    public async Task Pruning_deletes_only_old_changes_every_consumer_has_passed_and_never_reuses_a_sequence()
    {
        await using var rig = await FeedRig.StartAsync(_data.Path, []);
        await rig.CommitTicketsAsync(10);
        var committed = await rig.SequencesAsync();
        await rig.SaveCursorAsync("search", committed[4]);
        await rig.SaveCursorAsync("console", committed[7]);
        var later = DateTimeOffset.UtcNow.AddDays(1);

        // A consumer without a cursor has passed nothing; changes younger than the retention stay.
        Assert.Equal(0, await rig.PruneAsync(["search", "console", "routing"], later));
        Assert.Equal(0, await rig.PruneAsync(["search", "console"], DateTimeOffset.UtcNow.AddDays(-1)));
        Assert.Equal(5, await rig.PruneAsync(["search", "console"], later));
        Assert.Equal(committed[5..], await rig.SequencesAsync());

        // A cursor only moves forward.
        await rig.SaveCursorAsync("search", committed[1]);
        Assert.Equal(committed[4], await rig.CursorAsync("search"));

        Assert.Equal(5, await rig.PruneAsync([], later));
        Assert.Empty(await rig.SequencesAsync());
        Assert.Equal(committed[^1], await rig.Feed.LastSequenceAsync());
        await rig.CommitTicketsAsync(1);
        Assert.True((await rig.SequencesAsync()).Single() > committed[^1]);
    }

    [Fact]
    public async Task Pruning_names_the_consumers_whose_cursors_keep_changes_older_than_the_retention()
    {
        await using var rig = await FeedRig.StartAsync(_data.Path, []);
        await rig.CommitTicketsAsync(6);
        var committed = await rig.SequencesAsync();
        await rig.SaveCursorAsync("search", committed[1]);
        await rig.SaveCursorAsync("console", committed[^1]);
        var later = DateTimeOffset.UtcNow.AddDays(1);

        var (deleted, heldBackBy) = await rig.PruneReportingAsync(["search", "console", "routing"], later);
        Assert.Equal(0, deleted);
        Assert.Equal(["routing", "search"], heldBackBy);

        (deleted, heldBackBy) = await rig.PruneReportingAsync(["search", "console"], later);
        Assert.Equal(2, deleted);
        Assert.Equal(["search"], heldBackBy);

        // Nothing old is left behind once everyone has passed it.
        await rig.SaveCursorAsync("search", committed[^1]);
        (deleted, heldBackBy) = await rig.PruneReportingAsync(["search", "console"], later);
        Assert.Equal(4, deleted);
        Assert.Empty(heldBackBy);
    }

    [Fact]
    public async Task The_feed_reads_changes_after_a_position()
    {
        await using var rig = await FeedRig.StartAsync(_data.Path, []);
        await rig.Store.CommitAsync(new WriteSet().Insert(new TicketRecord { Number = 42, Subject = "read" }));
        await rig.Store.CommitAsync(new WriteSet().Update(new TicketRecord { Number = 42, Subject = "read" }, nameof(TicketRecord.Subject)));

        var all = await rig.Feed.ReadAsync(0, 10);

        Assert.Equal(["ticket/42/created", "ticket/42/updated"], all.Select(c => $"{c.Entity}/{c.EntityId}/{c.Kind}"));
        Assert.Equal(all[1].Sequence, await rig.Feed.LastSequenceAsync());
        Assert.Equal([all[1]], await rig.Feed.ReadAsync(all[0].Sequence, 10));
        Assert.Equal([all[0]], await rig.Feed.ReadAsync(0, 1));
    }
}
