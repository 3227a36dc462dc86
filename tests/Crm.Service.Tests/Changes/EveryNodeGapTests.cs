using System.Net.Http.Json;
using Crm.Connectors.Abstractions;
using Crm.Service.FullTextSearch;
using Crm.Service.Grains.Storage;
using Crm.Service.KnowledgeBase;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Changes;

/// <summary>
/// A node's own consumers (the channel-account cache, the console's counters) keep their cursor in memory and hold no
/// pruning back. When changes were pruned before a node read them, it must notice the hole and reload from the store:
/// otherwise an account disabled on one node keeps running on the other until a restart (review LD3).
/// </summary>
public sealed class EveryNodeGapTests : IDisposable
{
    private readonly TempDirectory _data = new();
    private readonly TempDirectory _second = new();

    public void Dispose()
    {
        _second.Dispose();
        _data.Dispose();
    }

    [Fact]
    public async Task A_node_that_missed_pruned_changes_reloads_its_channel_accounts()
    {
        await using var a = new CrmApp(_data.Path, PruningNodes.Pruning());
        await a.CreateApiChannelAsync();
        await using var b = new CrmApp(_data.Path, PruningNodes.Late(_second.Path));
        var directoryOfB = b.Services.GetRequiredService<IChannelAccounts>();
        await Eventually.WaitForAsync(() => Task.FromResult(directoryOfB.Find("bridge")), account => account is { Enabled: true }, TimeSpan.FromSeconds(60), "node B to load the account");
        // Node B's empty search indexes find the pruned feed and are rebuilt at its start; their swap wakes B's consumers.
        // Let that pass first, or it would read the change below before it is pruned.
        await PruningNodes.StartRebuildsDoneAsync(b);

        using (var admin = a.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "off", enabled = false })).EnsureSuccessStatusCode();
        // Node A's saved-cursor consumers pass the change and its pruning deletes it before node B has read it.
        await Eventually.WaitForAsync(() => a.QueryAsync(db => db.Changes.CountAsync(c => c.Entity == ChangeEntities.ChannelAccount && c.EntityId == "bridge")),
            count => count == 0, TimeSpan.FromSeconds(60), "node A to prune the account's changes");
        Assert.True(directoryOfB.Find("bridge")!.Enabled, "node B must not have read the change yet, or this test proves nothing");

        // A commit on node B wakes its consumers; the first change they read is past a hole.
        await b.CreateApiChannelAsync("other");

        await Eventually.WaitForAsync(() => Task.FromResult(directoryOfB.Find("bridge")), account => account is { Enabled: false }, TimeSpan.FromSeconds(60),
            "node B to reload its accounts after the hole and see the account disabled");
    }

    [Fact]
    public async Task A_node_that_missed_pruned_changes_asks_its_browsers_to_read_counts_and_timeline_again()
    {
        await using var a = new CrmApp(_data.Path, PruningNodes.Pruning());
        await a.CreateApiChannelAsync();
        var (number, _) = await a.ReceiveAsync("m-1", "alice", "Printer", "help");
        await using var b = new CrmApp(_data.Path, PruningNodes.Late(_second.Path));
        await PruningNodes.StartRebuildsDoneAsync(b);
        using var agent = await ConsoleBrowser.SignedInAsync(b, "ann@example.com", Crm.Service.Auth.ConsoleRoles.Agent);
        await using var hub = agent.AgentHub(b);
        var resyncs = 0;
        hub.On("Resync", () => Interlocked.Increment(ref resyncs));
        await hub.StartAsync();
        await hub.InvokeAsync("WatchTicket", number);

        // A reply on node A changes the watched ticket; A prunes the change before node B has read it.
        using (var service = await a.AgentAsync("service"))
            (await service.PostAsJsonAsync($"/api/v1/tickets/{number}/notes", new { text = "seen on A" })).EnsureSuccessStatusCode();
        await Eventually.WaitForAsync(() => a.QueryAsync(db => db.Changes.CountAsync(c => c.Entity == ChangeEntities.Ticket || c.Entity == ChangeEntities.Message)),
            count => count == 0, TimeSpan.FromSeconds(60), "node A to prune the ticket's changes");
        Assert.Equal(0, Volatile.Read(ref resyncs));

        await b.CreateApiChannelAsync("other");

        await Eventually.WaitForAsync(() => Task.FromResult(Volatile.Read(ref resyncs)), count => count > 0, TimeSpan.FromSeconds(60),
            "node B's browsers to be told to read their counts and open ticket again after the hole");
    }
}
