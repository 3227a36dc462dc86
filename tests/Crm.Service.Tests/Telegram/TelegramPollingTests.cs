using System.Text.Json.Nodes;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Telegram;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Telegram;

/// <summary>Long polling against the fake Bot API: the offset, restarts, and redelivery.</summary>
public sealed class TelegramPollingTests
{
    [Fact]
    public async Task Polled_messages_are_stored_and_the_offset_is_confirmed_only_up_to_what_is_stored()
    {
        await using var rig = await TelegramRig.StartAsync();
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA);
        for (var i = 1; i <= 5; i++)
            bot.Enqueue(TelegramRig.PrivateMessage(i, $"Hello {i}"));

        var stored = await rig.InboundCountReachedAsync("tg", 5);
        Assert.Equal([.. Enumerable.Range(1, 5).Select(i => $"{TelegramRig.UserId}:{i}")], stored.Select(m => m.ExternalId));
        Assert.Equal("Hello 3", stored[2].Text);
        Assert.Single(stored.Select(m => m.TicketNumber).Distinct());
        // The webhook was removed before polling (Telegram refuses getUpdates while one is set), and the stored cursor
        // is the last update; Telegram sees it confirmed with the next poll.
        Assert.Contains("deleteWebhook", bot.Calls);
        var cursor = await Eventually.WaitForAsync(() => rig.App.Services.GetRequiredService<IMailboxStateStore>().GetCursorAsync("tg", TelegramBotSupervisor.CursorFolder),
            c => c?.LastUid == 105, what: "cursor at the last update");
        await Eventually.WaitForAsync(() => Task.FromResult(bot.Confirmed), c => c == 105, what: "Telegram sees update 105 confirmed");
        Assert.NotNull(cursor);
    }

    /// <summary>Fails the hand-off of one chosen message until released: the reader must neither confirm it nor skip it.</summary>
    private sealed class StallingHandOff(IInboundHandOff inner, string stallOn) : IInboundHandOff
    {
        public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<IngestResult> HandOffAsync(InboundMessage message, CancellationToken cancellationToken = default)
        {
            if (message.ExternalMessageId == stallOn)
            {
                Reached.TrySetResult();
                // Never returns on its own: the host stops while it waits (a crash mid-update).
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            return await inner.HandOffAsync(message, cancellationToken);
        }
    }

    [Fact]
    public async Task A_restart_in_the_middle_of_polling_loses_nothing_and_stores_nothing_twice()
    {
        StallingHandOff? stalling = null;
        await using var rig = await TelegramRig.StartAsync(services => services.AddSingleton<IInboundHandOff>(provider =>
            stalling = new StallingHandOff(ActivatorUtilities.CreateInstance<ConversationHandOff>(provider), $"{TelegramRig.UserId}:6")));
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        for (var i = 1; i <= 10; i++)
            bot.Enqueue(TelegramRig.PrivateMessage(i, $"Message {i}"));
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA);
        await Eventually.WaitForAsync(() => Task.FromResult(stalling?.Reached.Task.IsCompleted == true), done => done, what: "the reader stuck on message 6");
        Assert.Equal(5, (await rig.InboundAsync("tg")).Count);
        // Nothing past the stuck update is confirmed to Telegram.
        Assert.True(bot.Confirmed < 106, $"confirmed up to {bot.Confirmed}");

        await rig.RestartAsync();
        for (var i = 11; i <= 12; i++)
            bot.Enqueue(TelegramRig.PrivateMessage(i, $"Message {i}"));
        var stored = await rig.InboundCountReachedAsync("tg", 12);
        await Task.Delay(300);
        stored = await rig.InboundAsync("tg");
        Assert.Equal([.. Enumerable.Range(1, 12).Select(i => $"{TelegramRig.UserId}:{i}").Order(StringComparer.Ordinal)], stored.Select(m => m.ExternalId!).Order(StringComparer.Ordinal));
        Assert.Single(stored.Select(m => m.TicketNumber).Distinct());
        await Eventually.WaitForAsync(() => Task.FromResult(bot.Confirmed), c => c == 112, what: "all confirmed");
        // Updates 1-5 were stored but not yet confirmed at the crash: Telegram handed them out again, and they were
        // answered as duplicates rather than stored twice.
        Assert.True(bot.Deliveries[101] >= 2, "update 101 was not redelivered after the restart");
    }

    [Fact]
    public async Task A_redelivered_update_or_the_same_message_after_an_offset_reset_never_reopens_or_changes_the_ticket()
    {
        await using var rig = await TelegramRig.StartAsync();
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA);
        var first = bot.Enqueue(TelegramRig.PrivateMessage(1, "My order is late"));
        var stored = Assert.Single(await rig.InboundCountReachedAsync("tg", 1));

        using var agent = await rig.App.AgentAsync();
        var close = await agent.PatchAsync($"/api/v1/tickets/{stored.TicketNumber}", System.Net.Http.Json.JsonContent.Create(new { status = "closed" }));
        Assert.True(close.IsSuccessStatusCode, await close.Content.ReadAsStringAsync());
        var before = await rig.App.QueryAsync(db => db.Tickets.AsNoTracking().SingleAsync(t => t.Number == stored.TicketNumber));

        // Telegram lost its confirmations (an offset reset): the same message comes again under a new update_id.
        bot.Redeliver([first]);
        await Eventually.WaitForAsync(() => Task.FromResult(bot.Confirmed), c => c == first + 1, what: "the redelivery handled");
        // And once more by restarting without the stored cursor being of any help (the same update_id again).
        await rig.RestartAsync();
        bot.Redeliver([first]);
        await Eventually.WaitForAsync(() => Task.FromResult(bot.Confirmed), c => c == first + 2, what: "the second redelivery handled");

        var after = await rig.App.QueryAsync(db => db.Tickets.AsNoTracking().SingleAsync(t => t.Number == stored.TicketNumber));
        Assert.Equal(TicketStatus.Closed, after.Status);
        Assert.Equal(before.UpdatedAt, after.UpdatedAt);
        Assert.Single(await rig.InboundAsync("tg"));
        Assert.Equal(1, await rig.App.QueryAsync(db => db.Tickets.CountAsync()));
    }
}
