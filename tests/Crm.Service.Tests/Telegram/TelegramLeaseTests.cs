using Crm.Connectors.Abstractions;
using Crm.Connectors.Telegram;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Leases;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Telegram;

/// <summary>One getUpdates reader per bot across nodes: two app hosts on one store (each its own silo) and one Bot API.</summary>
public sealed class TelegramLeaseTests
{
    /// <summary>A node cut off from the store: every lease call fails (a partition, or a process that died before it could release).</summary>
    private sealed class CuttableLeaseStore(IConnectorLeaseStore inner) : IConnectorLeaseStore
    {
        public volatile bool Cut;

        public Task<ConnectorLeaseRecord?> TryTakeAsync(string key, string holder, DateTimeOffset now, DateTimeOffset expiresAt, bool onlyIfHolder, CancellationToken cancellationToken = default) =>
            Cut ? throw new IOException("store unreachable") : inner.TryTakeAsync(key, holder, now, expiresAt, onlyIfHolder, cancellationToken);

        public Task ReleaseAsync(string key, string holder, CancellationToken cancellationToken = default) =>
            Cut ? throw new IOException("store unreachable") : inner.ReleaseAsync(key, holder, cancellationToken);

        public Task<ConnectorLeaseRecord?> FindAsync(string key, CancellationToken cancellationToken = default) => inner.FindAsync(key, cancellationToken);
    }

    private static readonly Dictionary<string, string?> ShortLeases = new()
    {
        // Long enough that a renewal late by a loaded CI box's stall does not hand the lease over.
        ["Connectors:Leases:Duration"] = "00:00:15",
        ["Connectors:Leases:RetryInterval"] = "00:00:00.200",
    };

    [Fact]
    public async Task Two_nodes_one_reader_and_a_dead_holders_lease_expires_and_the_other_takes_over_without_loss_or_duplicates()
    {
        CuttableLeaseStore? cutA = null;
        await using var rig = await TelegramRig.StartAsync(services => services.AddSingleton<IConnectorLeaseStore>(provider =>
            cutA = new CuttableLeaseStore(ActivatorUtilities.CreateInstance<SqliteConnectorLeaseStore>(provider))), ShortLeases);
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA, welcomeText: "Welcome! An agent will answer here.");
        var a = rig.App;
        for (var i = 1; i <= 3; i++)
            bot.Enqueue(TelegramRig.PrivateMessage(i, $"Message {i}"));
        await rig.InboundCountReachedAsync("tg", 3);

        // A second node on the same store and the same bot: it runs the bot's loop, but waits for the lease.
        await using var b = rig.SecondNode();
        var leasesA = a.Services.GetRequiredService<ConnectorLeases>();
        var leasesB = b.Services.GetRequiredService<ConnectorLeases>();
        await Eventually.WaitForAsync(() => Task.FromResult(b.Services.GetRequiredService<TelegramBotSupervisor>().IsRunning("tg")), r => r, what: "node B's loop for the bot");
        Assert.True(leasesA.Holds(TelegramBotSupervisor.LeaseKey("tg")));
        for (var i = 4; i <= 6; i++)
            bot.Enqueue(TelegramRig.PrivateMessage(i, $"Message {i}"));
        bot.Enqueue(TelegramRig.PrivateMessage(7, "/start"));
        await rig.InboundCountReachedAsync("tg", 6);
        // Several of node B's lease retries have passed meanwhile (every 200 ms); still one reader.
        await Eventually.WaitForAsync(() => Task.FromResult(bot.Calls.Count(c => c == "getUpdates")), n => n >= 8, what: "more polls");
        Assert.False(leasesB.Holds(TelegramBotSupervisor.LeaseKey("tg")));
        Assert.Equal(0, bot.Conflicts);
        // One getMe when the account was saved, one by the one reader.
        Assert.Equal(2, bot.Calls.Count(c => c == "getMe"));

        // Node A loses the store (and with it its lease): it stops reading on its own before the lease expires, and
        // node B takes over only after that.
        cutA!.Cut = true;
        await Eventually.WaitForAsync(() => Task.FromResult(leasesA.Holds(TelegramBotSupervisor.LeaseKey("tg"))), held => !held, what: "node A stops reading");
        await Eventually.WaitForAsync(() => Task.FromResult(leasesB.Holds(TelegramBotSupervisor.LeaseKey("tg"))), held => held, timeout: TimeSpan.FromSeconds(60), what: "node B takes over");
        // Node A dies without releasing anything.
        await a.DisposeAsync();
        for (var i = 8; i <= 10; i++)
            bot.Enqueue(TelegramRig.PrivateMessage(i, $"Message {i}"));
        await Eventually.WaitForAsync(() => Task.FromResult(bot.Confirmed), c => c == 110, what: "all updates confirmed");

        var stored = await b.QueryAsync(db => Task.FromResult(db.Messages.Where(m => m.ChannelAccountId == "tg" && m.Direction == Crm.Service.Contracts.MessageDirection.Inbound).Select(m => m.ExternalId!).ToList()));
        string[] expected = [.. Enumerable.Range(1, 10).Where(i => i != 7).Select(i => $"{TelegramRig.UserId}:{i}")];
        Assert.Equal(expected.Order(StringComparer.Ordinal), stored.Order(StringComparer.Ordinal));
        Assert.Equal(0, bot.Conflicts);
        Assert.Single(bot.Sent, s => s.Text?.Contains("Welcome!", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task A_clean_stop_releases_the_lease_and_the_other_node_takes_over_at_once()
    {
        await using var rig = await TelegramRig.StartAsync(settings: new Dictionary<string, string?>(ShortLeases)
        {
            // Far longer than the test waits: only a release lets node B in.
            ["Connectors:Leases:Duration"] = "00:10:00",
        });
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA);
        bot.Enqueue(TelegramRig.PrivateMessage(1, "Before"));
        await rig.InboundCountReachedAsync("tg", 1);
        await using var b = rig.SecondNode();
        await Eventually.WaitForAsync(() => Task.FromResult(b.Services.GetRequiredService<TelegramBotSupervisor>().IsRunning("tg")), r => r, what: "node B's loop for the bot");

        await rig.App.DisposeAsync();
        bot.Enqueue(TelegramRig.PrivateMessage(2, "After"));
        await Eventually.WaitForAsync(() => b.QueryAsync(db => Task.FromResult(db.Messages.Count(m => m.ChannelAccountId == "tg"))), n => n == 2, timeout: TimeSpan.FromSeconds(60), what: "node B stores the next message");
        Assert.True(b.Services.GetRequiredService<ConnectorLeases>().Holds(TelegramBotSupervisor.LeaseKey("tg")));
        Assert.Equal(0, bot.Conflicts);
    }
}
