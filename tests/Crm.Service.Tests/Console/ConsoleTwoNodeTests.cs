using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.SignalR.Client;

namespace Crm.Service.Tests.Console;

/// <summary>
/// The console's live events come from the change feed, so an agent connected to one node sees what is done on
/// another: two app hosts (each its own silo) on one store. Each node pushes to its own connections and keeps its own
/// queue counters, so each must get every change, not share one cursor with the other node.
/// </summary>
public sealed class ConsoleTwoNodeTests : IAsyncLifetime
{
    private const string Ann = "ann@example.com";
    private readonly TempDirectory _data = new();
    private readonly TempDirectory _second = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        _second.Dispose();
        _data.Dispose();
        return Task.CompletedTask;
    }

    private static async Task<long> ReceiveAsync(CrmApp app, string id, string sender)
    {
        var response = await app.PostMessageAsync(new { messageId = id, sender = new { id = sender, name = sender }, subject = "Printer", text = "help" });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    [Fact]
    public async Task An_agent_on_one_node_sees_live_the_messages_and_queue_counts_of_changes_made_on_the_other()
    {
        await using var a = new CrmApp(_data.Path);
        await a.CreateApiChannelAsync();
        var ticket = await ReceiveAsync(a, "first", "alice");
        await using var b = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            // An index has one writer: the second node's are its own.
            ["Search:LuceneDirectory"] = Path.Combine(_second.Path, "search"),
            ["Search:RecordsLuceneDirectory"] = Path.Combine(_second.Path, "search-records"),
        });
        using var ann = await ConsoleBrowser.SignedInAsync(b, Ann, ConsoleRoles.Agent);
        await using var hub = ann.AgentHub(b);
        var changed = new ConcurrentQueue<long>();
        var queued = new ConcurrentQueue<long>();
        hub.On<long>("TicketChanged", number => changed.Enqueue(number));
        hub.On<IReadOnlyList<long>>("QueuesChanged", numbers => { foreach (var n in numbers) queued.Enqueue(n); });
        await hub.StartAsync();
        await hub.InvokeAsync("WatchTicket", ticket);
        var before = await hub.InvokeAsync<QueueCountsView>("GetCounts");

        // Everything below is done on node A; Ann is connected to node B.
        await ReceiveAsync(a, "second", "alice");
        var created = new List<long>();
        for (var i = 0; i < 5; i++)
            created.Add(await ReceiveAsync(a, $"new-{i}", $"sender-{i}"));

        await Eventually.WaitForAsync(() => Task.FromResult(changed.ToArray()), c => c.Contains(ticket), TimeSpan.FromSeconds(60), "the open ticket's new message pushed by node B");
        await Eventually.WaitForAsync(() => Task.FromResult(queued.ToArray()), q => created.All(q.Contains), TimeSpan.FromSeconds(60), "every new ticket in node B's queue updates");
        var after = await Eventually.WaitForAsync(() => hub.InvokeAsync<QueueCountsView>("GetCounts"), c => c.Unassigned == before.Unassigned + 5,
            TimeSpan.FromSeconds(60), "node B's counts to include the five new tickets");
        Assert.Equal(before.Open + 5, after.Open);
    }
}
