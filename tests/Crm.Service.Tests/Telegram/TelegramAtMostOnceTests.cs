using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.Telegram;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Telegram.Bot;
using Telegram.Bot.Exceptions;

namespace Crm.Service.Tests.Telegram;

/// <summary>Review EO8: each part of a Telegram reply reaches the customer at most once, and what is not known is said
/// with how many parts went out: a kill between parts resumes (EO1), a kill while a part is out names k of n (EO1), a
/// network failure after the request went out is "not confirmed" (EO2), the outcome is committed before the delivery
/// status (EO3), and a refusal about one group is not a channel error (EO4).</summary>
public sealed class TelegramAtMostOnceTests : IAsyncLifetime
{
    private TelegramRig _rig = null!;
    private FakeBotApi.Bot _bot = null!;
    private long _ticket;

    public async Task InitializeAsync()
    {
        // Long enough an inline wait for a 429 that the test sees the row during it (the send timeout stays 30 s).
        _rig = await TelegramRig.StartAsync(services => services.AddFaultInjectingStore(),
            new Dictionary<string, string?> { ["Channels:Telegram:MaxInlineRetryAfter"] = "00:01:00" });
        _bot = _rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await _rig.ConfigureBotAsync("tg", TelegramRig.TokenA);
        _bot.Enqueue(TelegramRig.PrivateMessage(1, "Where is my parcel?"));
        _ticket = Assert.Single(await _rig.InboundCountReachedAsync("tg", 1)).TicketNumber;
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    private static string ThreePartText()
    {
        var paragraph = string.Join(' ', Enumerable.Repeat("Lorem ipsum dolor sit amet.", 45));
        var text = string.Join('\n', Enumerable.Range(1, 9).Select(i => $"{i}. {paragraph}"));
        Assert.Equal(3, TelegramSender.Split(text).Count);
        return text;
    }

    private async Task<Guid> ReplyAsync(string text)
    {
        using var agent = await _rig.App.AgentAsync();
        var response = await agent.PostAsJsonAsync($"/api/v1/tickets/{_ticket}/reply", new { text });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private Task<MessageRecord> SettledAsync(Guid id) =>
        Eventually.WaitForAsync(() => _rig.App.QueryAsync(db => db.Messages.AsNoTracking().SingleAsync(m => m.Id == id)),
            m => m.Delivery != DeliveryStatus.Queued, TimeSpan.FromSeconds(60), "the reply settled");

    private Task<OutboxRecord> RowAsync(Guid id) => _rig.App.QueryAsync(db => db.Outbox.AsNoTracking().SingleAsync(o => o.MessageId == id));

    private Task<OutboxRecord> FinalRowAsync(Guid id) =>
        Eventually.WaitForAsync(() => RowAsync(id), o => o.State != OutboxState.Pending, TimeSpan.FromSeconds(60), "the outbox row is final");

    // EO1: a kill while part 2 of 3 was on its way leaves the row marked so (part 1 stored). The next pass neither sends
    // part 1 again nor drops the rest silently: "not confirmed", naming 1 of 3 parts.
    [Fact]
    public async Task A_row_found_in_flight_at_part_two_of_three_is_not_confirmed_with_one_of_three_parts_and_nothing_is_sent()
    {
        using (var admin = _rig.App.Admin())
        {
            var disabled = await admin.PutAsJsonAsync("/api/v1/admin/channels/tg", new
            {
                kind = "telegram", name = "tg", enabled = false,
                settings = new { token = TelegramRig.TokenA, mode = "polling", groups = "ignore" },
            });
            Assert.True(disabled.IsSuccessStatusCode, await disabled.Content.ReadAsStringAsync());
        }
        var id = await ReplyAsync(ThreePartText());
        await Eventually.WaitForAsync(() => RowAsync(id), o => o.LastError == "waiting: channel disabled", TimeSpan.FromSeconds(60), "the reply parked");

        // What a kill during part 2's request leaves behind (the channel still disabled: a row in flight is settled anyway).
        await _rig.App.QueryAsync(async db =>
        {
            var row = await db.Outbox.SingleAsync(o => o.MessageId == id);
            row.Attempts = 1;
            row.SentParts = "5001";
            row.LastError = "in flight: part 2 of 3 on its way, outcome not recorded";
            row.NextAttemptAt = DateTimeOffset.UtcNow.AddSeconds(-1);
            return await db.SaveChangesAsync();
        });

        var settled = await SettledAsync(id);
        Assert.Equal(DeliveryStatus.Failed, settled.Delivery);
        Assert.StartsWith("Not confirmed", settled.DeliveryError);
        Assert.Contains("1 of 3 parts", settled.DeliveryError);
        Assert.Contains("part 2 may have", settled.DeliveryError);
        Assert.Equal(OutboxState.Failed, (await FinalRowAsync(id)).State);
        Assert.Empty(_bot.Sent);
    }

    // Review RC3: the attempt is committed before the files are read and the chat is found, and the sender marks each
    // part (a single one too) right before its request. What a kill leaves at the moment the first part is marked (read
    // from the store as the mark's commit starts) is not in flight, so it resumes instead of "not confirmed"; a single
    // part is marked before its request as well.
    [Fact]
    public async Task Before_the_first_part_is_marked_the_row_is_not_in_flight_and_a_single_part_is_marked_too()
    {
        var atFirstMark = new System.Collections.Concurrent.ConcurrentQueue<(string Marking, string? Stored)>();
        _rig.App.Store.BeforeCommit = async writes =>
        {
            foreach (var row in writes.Operations.OfType<UpdateRow>().Select(u => u.Record).OfType<OutboxRecord>())
                if (row.LastError?.StartsWith("in flight: part 1 of ", StringComparison.Ordinal) == true)
                    atFirstMark.Enqueue((row.LastError, (await RowAsync(row.MessageId)).LastError));
        };
        var text = ThreePartText();
        var three = await ReplyAsync(text);
        Assert.Equal(DeliveryStatus.Sent, (await SettledAsync(three)).Delivery);
        var one = await ReplyAsync("Your parcel left the depot.");
        Assert.Equal(DeliveryStatus.Sent, (await SettledAsync(one)).Delivery);
        _rig.App.Store.BeforeCommit = null;

        var marks = atFirstMark.ToList();
        Assert.Equal(2, marks.Count);
        Assert.StartsWith("in flight: part 1 of 3 ", marks[0].Marking, StringComparison.Ordinal);
        Assert.StartsWith("in flight: part 1 of 1 ", marks[1].Marking, StringComparison.Ordinal);
        Assert.All(marks, m => Assert.False(m.Stored?.StartsWith("in flight", StringComparison.Ordinal) == true, $"stored before the first mark: {m.Stored}"));
        Assert.Equal([.. TelegramSender.Split(text), "Your parcel left the depot."], _bot.Sent.Select(s => FakeBotApi.ParseHtml(s.Text!)!));
    }

    // EO1: between parts nothing is on its way, and the row says so (the in-flight mark is lifted with the stored parts):
    // a kill there (here: during a 429 wait Telegram asked for) resumes after a start with only the parts not sent.
    [Fact]
    public async Task Between_parts_the_row_is_not_in_flight_and_a_restart_sends_only_the_remaining_parts()
    {
        _bot.FloodRetryAfter.Enqueue(0);
        _bot.FloodRetryAfter.Enqueue(20);
        var text = ThreePartText();
        var id = await ReplyAsync(text);
        var between = await Eventually.WaitForAsync(() => RowAsync(id),
            o => o.SentParts?.Split(',').Length == 1 && o.LastError?.StartsWith("in flight", StringComparison.Ordinal) != true,
            TimeSpan.FromSeconds(60), "part 1 stored and the mark lifted while Telegram's 429 is waited out");
        Assert.Equal(OutboxState.Pending, between.State);
        Assert.Single(_bot.Sent);

        await _rig.RestartAsync(services => services.AddFaultInjectingStore());

        var settled = await SettledAsync(id);
        Assert.Equal(DeliveryStatus.Sent, settled.Delivery);
        var sent = _bot.Sent.ToList();
        Assert.Equal(TelegramSender.Split(text), sent.Select(s => FakeBotApi.ParseHtml(s.Text!)!));
        Assert.Equal($"{TelegramRig.UserId}:{string.Join(',', sent.Select(s => s.MessageId))}", settled.OutboundExternalId);
    }

    // EO2: Telegram takes part 2 and the connection is reset before its answer. Sending part 2 again would repeat it:
    // the reply is "not confirmed" with 1 of 3 parts, and each part went once.
    [Fact]
    public async Task A_connection_reset_after_telegram_took_part_two_is_not_confirmed_and_no_part_is_sent_twice()
    {
        _bot.ResetAnswerAt = 2;
        var id = await ReplyAsync(ThreePartText());

        var settled = await SettledAsync(id);
        Assert.Equal(DeliveryStatus.Failed, settled.Delivery);
        Assert.StartsWith("Not confirmed", settled.DeliveryError);
        Assert.Contains("1 of 3 parts", settled.DeliveryError);
        Assert.Equal(OutboxState.Failed, (await FinalRowAsync(id)).State);
        var sent = _bot.Sent.ToList();
        Assert.Equal(2, sent.Count);
        Assert.Equal(2, sent.Select(s => s.Text).Distinct().Count());
    }

    // EO2: only a connection that never opened proves nothing reached Telegram (a retry); a reset after the request
    // went out does not.
    [Fact]
    public async Task Only_a_connection_that_never_opened_counts_as_nothing_sent()
    {
        var closed = new TelegramBotClient(new TelegramBotClientOptions(TelegramRig.TokenA, $"http://127.0.0.1:{FreePorts.Next()}"));
        var refused = await Assert.ThrowsAnyAsync<RequestException>(() => closed.SendMessage(TelegramRig.UserId, "Hello"));
        Assert.True(TelegramSender.NeverLeft(refused), refused.ToString());

        _bot.ResetAnswerAt = 1;
        var open = new TelegramBotClient(new TelegramBotClientOptions(TelegramRig.TokenA, _rig.Api.BaseUrl));
        var reset = await Assert.ThrowsAnyAsync<RequestException>(() => open.SendMessage(TelegramRig.UserId, "Hello"));
        Assert.False(TelegramSender.NeverLeft(reset), reset.ToString());
        Assert.Single(_bot.Sent);
    }

    // RC2: a Bot API that never answers the connect (a firewall dropping SYNs) fails by ConnectTimeout, which .NET
    // reports as a cancellation with the TimeoutException inside: nothing left, so it is a retry, not "not confirmed".
    [Fact]
    public async Task A_connect_timeout_counts_as_nothing_sent()
    {
        using var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromMilliseconds(300),
            // Never connects: the pool's own ConnectTimeout cancels this, exactly as an unanswered SYN would end.
            ConnectCallback = async (_, cancellationToken) =>
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
                throw new InvalidOperationException("unreachable");
            },
        };
        using var http = new HttpClient(handler);
        var client = new TelegramBotClient(new TelegramBotClientOptions(TelegramRig.TokenA, "http://bot-api.invalid"), http);
        var timedOut = await Assert.ThrowsAnyAsync<Exception>(() => client.SendMessage(TelegramRig.UserId, "Hello"));
        Assert.True(TelegramSender.NeverLeft(timedOut), timedOut.ToString());
        Assert.False(TelegramSender.NeverLeft(new RequestException("Request timed out", new TaskCanceledException("The request was canceled due to the configured HttpClient.Timeout of 100 seconds elapsing.", new TimeoutException("The operation was canceled.")))));
    }

    // EO3: Telegram confirmed the reply, then the delivery status write fails once (a busy store). The outcome was
    // committed with the row first, so the next pass finishes it: sent, never "not confirmed", never sent twice.
    [Fact]
    public async Task A_failed_delivery_status_write_after_telegram_confirmed_the_reply_still_ends_sent()
    {
        _rig.App.Store.FailNextCommitWhere(writes => writes.Operations.OfType<SetDelivery>().Any(d => d.Status == DeliveryStatus.Sent));
        var id = await ReplyAsync("Your parcel left the depot.");

        var settled = await SettledAsync(id);
        Assert.Equal(1, _rig.App.Store.Refused);
        Assert.Equal(DeliveryStatus.Sent, settled.Delivery);
        Assert.Equal(OutboxState.Done, (await FinalRowAsync(id)).State);
        Assert.Single(_bot.Sent);
    }

    // EO4: anyone can add the bot to a group where it may not post; Telegram's refusal is about that chat, so the
    // channel stays connected (CT12), and the agent is told in plain words.
    [Fact]
    public async Task A_group_where_the_bot_may_not_post_is_no_channel_error()
    {
        _bot.RefuseMessagesWith = "Bad Request: not enough rights to send text messages to the chat";
        var id = await ReplyAsync("Are you there?");

        var settled = await SettledAsync(id);
        Assert.Equal(DeliveryStatus.Failed, settled.Delivery);
        Assert.Equal("Delivery failed: Telegram does not let the bot write to this chat.", settled.DeliveryError);
        await FinalRowAsync(id);
        using var admin = _rig.App.Admin();
        var channel = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/tg");
        Assert.False(channel.TryGetProperty("lastErrorAt", out var errorAt) && errorAt.ValueKind != JsonValueKind.Null, channel.ToString());
        Assert.True(channel.GetProperty("connected").GetBoolean());
    }
}
