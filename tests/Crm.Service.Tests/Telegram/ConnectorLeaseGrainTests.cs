using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Crm.Service.Tests.Telegram;

/// <summary>The generic connector lease on a real silo and store, with the grains' fake clock.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ConnectorLeaseGrainTests(TestClusterFixture cluster)
{
    [Fact]
    public async Task One_holder_at_a_time_until_it_releases_or_its_lease_expires()
    {
        var key = "lease-" + Guid.NewGuid().ToString("N")[..8];
        var lease = cluster.Grains.GetGrain<IConnectorLeaseGrain>(key);
        var duration = TimeSpan.FromSeconds(30);

        var first = await lease.AcquireAsync("node-a", duration);
        Assert.True(first.Granted);
        Assert.Equal(1, first.Generation);
        Assert.Equal(cluster.Time.GetUtcNow() + duration, first.ExpiresAt);

        // Another node is refused and told who holds it; it cannot renew what it does not hold.
        var refused = await lease.AcquireAsync("node-b", duration);
        Assert.False(refused.Granted);
        Assert.Equal("node-a", refused.Holder);
        Assert.False((await lease.RenewAsync("node-b", duration)).Granted);

        // The holder renews (the generation stays), and asking again as the holder extends too.
        cluster.Time.Advance(TimeSpan.FromSeconds(20));
        var renewed = await lease.RenewAsync("node-a", duration);
        Assert.True(renewed.Granted);
        Assert.Equal(1, renewed.Generation);
        Assert.Equal(cluster.Time.GetUtcNow() + duration, renewed.ExpiresAt);
        cluster.Time.Advance(TimeSpan.FromSeconds(20));
        Assert.False((await lease.AcquireAsync("node-b", duration)).Granted);

        // A dead holder stops renewing: once expired, the other node takes it (next generation), and the old holder's
        // renewal is refused, which tells it to stop.
        cluster.Time.Advance(duration);
        var takeover = await lease.AcquireAsync("node-b", duration);
        Assert.True(takeover.Granted);
        Assert.Equal(2, takeover.Generation);
        Assert.False((await lease.RenewAsync("node-a", duration)).Granted);

        // A release by a former holder changes nothing; the holder's own frees it at once.
        await lease.ReleaseAsync("node-a");
        Assert.False((await lease.AcquireAsync("node-a", duration)).Granted);
        await lease.ReleaseAsync("node-b");
        var afterRelease = await lease.AcquireAsync("node-a", duration);
        Assert.True(afterRelease.Granted);
        Assert.Equal(3, afterRelease.Generation);

        // The lease is the store's row (the grain keeps nothing in memory), so any activation reads the same holder.
        var stored = await lease.GetAsync();
        Assert.Equal("node-a", stored?.Holder);
        Assert.Equal("node-a", await cluster.QueryAsync(db => db.ConnectorLeases.Where(l => l.Key == key).Select(l => l.Holder).SingleAsync()));
    }

    [Fact]
    public async Task Concurrent_acquires_by_many_nodes_grant_the_lease_to_exactly_one()
    {
        var key = "lease-" + Guid.NewGuid().ToString("N")[..8];
        // Two activations' worth of callers: the grain and, beneath it, the store's conditional write.
        var grants = await Task.WhenAll(Enumerable.Range(0, 16).Select(i =>
            cluster.Grains.GetGrain<IConnectorLeaseGrain>(key).AcquireAsync($"node-{i}", TimeSpan.FromSeconds(30))));
        var winner = Assert.Single(grants, g => g.Granted);
        Assert.All(grants, g => Assert.Equal(winner.Holder, g.Holder));
    }

    [Fact]
    public async Task A_lease_longer_than_ten_minutes_or_without_a_holder_is_refused()
    {
        var lease = cluster.Grains.GetGrain<IConnectorLeaseGrain>("lease-invalid");
        var tooLong = await Assert.ThrowsAsync<DomainException>(() => lease.AcquireAsync("node-a", TimeSpan.FromHours(1)));
        Assert.Equal("duration", tooLong.Field);
        await Assert.ThrowsAsync<DomainException>(() => lease.AcquireAsync(" ", TimeSpan.FromSeconds(5)));
    }

    /// <summary>Review telegram2 L1: a run that is slow to stop (a settings change while the reader is in a call that
    /// ignores cancellation) and the next run for the same key on the same node never hold the lease together, and the
    /// old run's release does not free the new run's grant.</summary>
    [Fact]
    public async Task A_run_still_stopping_keeps_the_next_run_on_the_same_node_waiting_and_its_release_frees_only_its_own_grant()
    {
        var key = "lease-" + Guid.NewGuid().ToString("N")[..8];
        var leases = new ConnectorLeases(cluster.Grains,
            Options.Create(new ConnectorLeaseOptions { Duration = TimeSpan.FromSeconds(30), RetryInterval = TimeSpan.FromMilliseconds(100) }),
            TimeProvider.System, NullLogger<ConnectorLeases>.Instance);
        var firstRunning = new TaskCompletionSource();
        var letFirstEnd = new TaskCompletionSource();
        using var stopFirst = new CancellationTokenSource();
        var first = leases.RunWhileHeldAsync(key, async _ =>
        {
            firstRunning.TrySetResult();
            await letFirstEnd.Task; // ignores its token, like a call that does not honour cancellation
        }, stopFirst.Token);
        await firstRunning.Task.WaitAsync(TimeSpan.FromSeconds(60));

        // The supervisor gave up waiting for the first run and starts the next one.
        await stopFirst.CancelAsync();
        var secondRunning = new TaskCompletionSource();
        using var stopSecond = new CancellationTokenSource();
        var second = leases.RunWhileHeldAsync(key, async token =>
        {
            secondRunning.TrySetResult();
            await Task.Delay(Timeout.Infinite, token);
        }, stopSecond.Token);
        // Many of the second run's retries (every 100 ms) pass meanwhile; it must not start while the first runs.
        await Task.WhenAny(secondRunning.Task, Task.Delay(TimeSpan.FromSeconds(2)));
        Assert.False(secondRunning.Task.IsCompleted, "the second run started while the first still ran");

        letFirstEnd.SetResult();
        await first.WaitAsync(TimeSpan.FromSeconds(60));
        await secondRunning.Task.WaitAsync(TimeSpan.FromSeconds(60));
        // The first run's release came before the second's grant, and freed nothing of the second's.
        var grain = cluster.Grains.GetGrain<IConnectorLeaseGrain>(key);
        Assert.StartsWith(leases.Holder + "/", (await grain.GetAsync())?.Holder);
        Assert.True(leases.Holds(key));

        await stopSecond.CancelAsync();
        await second.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Null((await grain.GetAsync())?.Holder);
        Assert.False(leases.Holds(key));
    }
}
