using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Telegram;
using Crm.Service.Infrastructure.Mailboxes;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Telegram;

/// <summary>Review CT4: the "last received" health write after an update is best effort.</summary>
public sealed class TelegramReceivedWriteTests
{
    /// <summary>The real store, except that writing the "last received" cursor fails while <see cref="Fail"/> is set.</summary>
    private sealed class ReceivedWriteFails(IMailboxStateStore inner) : IMailboxStateStore
    {
        public volatile bool Fail = true;
        public int Failed;

        public Task<MailboxCursor?> GetCursorAsync(string channelAccountId, string folder, CancellationToken cancellationToken = default) =>
            inner.GetCursorAsync(channelAccountId, folder, cancellationToken);

        public Task SaveCursorAsync(string channelAccountId, string folder, MailboxCursor cursor, CancellationToken cancellationToken = default)
        {
            if (folder == ChannelActivity.ReceivedFolder && Fail)
            {
                Interlocked.Increment(ref Failed);
                throw new IOException("database is locked");
            }
            return inner.SaveCursorAsync(channelAccountId, folder, cursor, cancellationToken);
        }

        public Task<bool> QuarantineAsync(QuarantinedMail mail, CancellationToken cancellationToken = default) => inner.QuarantineAsync(mail, cancellationToken);

        public Task<int> PruneQuarantineAsync(string channelAccountId, string folder, DateTimeOffset keptBefore, CancellationToken cancellationToken = default) =>
            inner.PruneQuarantineAsync(channelAccountId, folder, keptBefore, cancellationToken);

        public Task<bool> IsQuarantinedAsync(string channelAccountId, byte[] rawSource, CancellationToken cancellationToken = default) =>
            inner.IsQuarantinedAsync(channelAccountId, rawSource, cancellationToken);
    }

    private static async Task<HttpStatusCode> PostAsync(TelegramRig rig, int updateId, JsonObject update)
    {
        update["update_id"] = updateId;
        using var client = rig.App.CreateClient();
        var request = new HttpRequestMessage(HttpMethod.Post, "/connectors/telegram/tg/webhook") { Content = new StringContent(update.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Add(TelegramWebhookEndpoints.SecretHeader, TelegramRig.Secret);
        return (await client.SendAsync(request)).StatusCode;
    }

    // CT4: the write ran inside the try after the update was stored, so a busy store failed the stored update: no 200,
    // a failed attempt counted, after MaxUpdateAttempts a "Not handled" row and a false health error. And the write
    // time was taken before the write, so after a failure the next 30 s wrote nothing.
    [Fact]
    public async Task A_failed_last_received_write_does_not_fail_a_stored_update_and_is_tried_again_with_the_next()
    {
        ReceivedWriteFails? store = null;
        await using var rig = await TelegramRig.StartAsync(services: services => services.AddSingleton<IMailboxStateStore>(provider =>
            store = new ReceivedWriteFails(provider.GetRequiredService<SqliteMailboxStore>())), settings: new Dictionary<string, string?>
        {
            ["Channels:Telegram:MaxUpdateAttempts"] = "2",
            ["Channels:Telegram:ReceivedRetryDelay"] = "00:00:00",
        });
        rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA, mode: "webhook", secretToken: TelegramRig.Secret);

        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 1, TelegramRig.PrivateMessage(1, "Hello")));
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 2, TelegramRig.PrivateMessage(2, "Are you there?")));
        // Review IN4: the failed write is tried again by the very next update (no retry delay here), so exactly twice.
        Assert.Equal(2, store!.Failed);
        Assert.Equal(2, (await rig.InboundAsync("tg")).Count);
        Assert.Empty(await rig.KeptAsync("tg"));
        var state = rig.App.Services.GetRequiredService<IMailboxStateStore>();
        Assert.Null(await state.GetCursorAsync("tg", TelegramIngest.AttemptsFolder));

        // The store is back: the next update records it at once (not half a minute after the failed write).
        store.Fail = false;
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 3, TelegramRig.PrivateMessage(3, "Hello again")));
        Assert.Equal(3u, (await state.GetCursorAsync("tg", ChannelActivity.ReceivedFolder))?.LastUid);
    }

    // Review IN3: the slot was read, then written, then stamped, so updates handled at once each wrote, and while the
    // store failed every update added one more write (each waiting out the busy timeout before its 200). Now the slot is
    // claimed before the write and a failure waits ReceivedRetryDelay.
    [Fact]
    public async Task Updates_handled_at_once_while_the_store_fails_make_one_last_received_write()
    {
        ReceivedWriteFails? store = null;
        await using var rig = await TelegramRig.StartAsync(services: services => services.AddSingleton<IMailboxStateStore>(provider =>
            store = new ReceivedWriteFails(provider.GetRequiredService<SqliteMailboxStore>())), settings: new Dictionary<string, string?>
        {
            ["Channels:Telegram:ReceivedRetryDelay"] = "00:10:00",
        });
        rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA, mode: "webhook", secretToken: TelegramRig.Secret);

        var answers = await Task.WhenAll(Enumerable.Range(1, 20).Select(i => PostAsync(rig, i, TelegramRig.PrivateMessage(i, $"Message {i}"))));

        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a));
        Assert.Equal(20, (await rig.InboundAsync("tg")).Count);
        Assert.Equal(1, store!.Failed);
    }
}
