using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Telegram;

/// <summary>Telegram replies in several parts across a stop or restart: each part reaches the customer at most once
/// (reviews FX1, ER10), and a failed health report never turns a retry into "not confirmed" (FX4).</summary>
public sealed class TelegramOutboxRestartTests : IAsyncLifetime
{
    private TelegramRig _rig = null!;
    private FakeBotApi.Bot _bot = null!;
    private long _ticket;
    private readonly ThrowOnceHealth.Switch _healthFault = new();

    public async Task InitializeAsync()
    {
        _rig = await TelegramRig.StartAsync(services => ThrowOnceHealth.Install(services, _healthFault));
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
        Assert.Equal(3, global::Crm.Connectors.Telegram.TelegramSender.Split(text).Count);
        return text;
    }

    private async Task<Guid> PostAsync(HttpContent content)
    {
        using var agent = await _rig.App.AgentAsync();
        var response = await agent.PostAsync($"/api/v1/tickets/{_ticket}/reply", content);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private Task<MessageRecord> SettledAsync(Guid id) =>
        Eventually.WaitForAsync(() => _rig.App.QueryAsync(db => db.Messages.AsNoTracking().SingleAsync(m => m.Id == id)),
            m => m.Delivery != DeliveryStatus.Queued, TimeSpan.FromSeconds(60), "the reply settled");

    private Task<OutboxRecord> RowAsync(Guid id) => _rig.App.QueryAsync(db => db.Outbox.AsNoTracking().SingleAsync(o => o.MessageId == id));

    // FX1: the service stops while Telegram holds its answer to part 2 of 3. Part 1 is confirmed, part 2 may have
    // arrived: the reply is "not confirmed" (k of n parts), and the restart sends no part again and not part 3 either.
    [Fact]
    public async Task A_stop_while_telegram_holds_its_answer_to_part_two_sends_no_part_again_and_the_reply_is_not_confirmed()
    {
        _bot.HoldAnswersFrom = 2;
        var id = await PostAsync(JsonContent.Create(new { text = ThreePartText() }));
        await Eventually.WaitForAsync(() => Task.FromResult(_bot.Sent.Count), n => n >= 2, TimeSpan.FromSeconds(60), "part 2 reached Telegram");

        await _rig.RestartAsync(services => ThrowOnceHealth.Install(services, _healthFault));
        _bot.HoldAnswersFrom = null;

        var settled = await SettledAsync(id);
        Assert.Equal(DeliveryStatus.Failed, settled.Delivery);
        // "…after 1 of 3 parts reached the customer…", whether the outcome was settled during the stop (its row committed
        // first, review EO3) or the restart found the row in flight at part 2 of 3 (review EO1): never a resend.
        Assert.StartsWith("Not confirmed", settled.DeliveryError);
        Assert.Contains("1 of 3 parts", settled.DeliveryError);
        // A stop says nothing about the channel: no channel error for it (review EO5).
        var channelError = await _rig.App.QueryAsync(db => db.ChannelAccounts.AsNoTracking().Where(c => c.Id == "tg").Select(c => c.LastError).SingleAsync());
        Assert.DoesNotContain("Cut short", channelError ?? "", StringComparison.Ordinal);
        // The restarted outbox has looked at the row (it is final) and sent nothing more.
        Assert.Equal(OutboxState.Failed, (await RowAsync(id)).State);
        var sent = _bot.Sent.ToList();
        Assert.Equal(2, sent.Count);
        Assert.Equal(2, sent.Select(s => s.Text).Distinct().Count());
    }

    // ER10: attempt 1 sends the text and the first file, then Telegram answers 429 for the second; after a restart the
    // retry sends only the second file. The files go in upload order.
    [Fact]
    public async Task A_reply_with_files_cut_short_by_a_429_resumes_after_a_restart_with_only_the_parts_not_yet_sent()
    {
        _bot.FloodRetryAfter.Enqueue(0);
        _bot.FloodRetryAfter.Enqueue(0);
        _bot.FloodRetryAfter.Enqueue(30);
        using var form = new MultipartFormDataContent { { new StringContent("Your label and the invoice."), "text" } };
        form.Add(new ByteArrayContent(Encoding.ASCII.GetBytes("%PDF-1.4 label")), "files", "z-label.pdf");
        form.Add(new ByteArrayContent(Encoding.ASCII.GetBytes("%PDF-1.4 invoice")), "files", "a-invoice.pdf");
        var id = await PostAsync(form);
        var retried = await Eventually.WaitForAsync(() => RowAsync(id), o => o.LastError?.Contains("429", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(60), "attempt 1 ended with the 429");
        Assert.Equal(2, retried.SentParts?.Split(',').Length);

        await _rig.RestartAsync(services => ThrowOnceHealth.Install(services, _healthFault));

        var settled = await SettledAsync(id);
        Assert.Equal(DeliveryStatus.Sent, settled.Delivery);
        var sent = _bot.Sent.ToList();
        Assert.Equal(["sendMessage", "sendDocument", "sendDocument"], sent.Select(s => s.Method));
        Assert.Equal([null, "z-label.pdf", "a-invoice.pdf"], sent.Select(s => s.FileName));
        Assert.Equal($"{TelegramRig.UserId}:{string.Join(',', sent.Select(s => s.MessageId))}", settled.OutboundExternalId);
    }

    // FX4: a retryable answer (a long 429) whose channel health report fails: the row's outcome is committed first, so
    // the next pass retries it instead of taking it for a send interrupted in flight ("not confirmed").
    [Fact]
    public async Task A_failed_health_report_after_a_retryable_answer_does_not_leave_the_reply_not_confirmed()
    {
        _healthFault.ThrowOnNextError = true;
        _bot.FloodRetryAfter.Enqueue(2);
        var id = await PostAsync(JsonContent.Create(new { text = "Your parcel left the depot." }));

        var settled = await SettledAsync(id);
        Assert.False(_healthFault.ThrowOnNextError, "the health report failed once");
        Assert.Equal(DeliveryStatus.Sent, settled.Delivery);
        Assert.Single(_bot.Sent);
    }

    /// <summary>The app's channel health, whose next report of a 429 can be made to throw once (a busy store).</summary>
    private sealed class ThrowOnceHealth(IChannelHealth inner, ThrowOnceHealth.Switch fault) : IChannelHealth
    {
        public sealed class Switch
        {
            public volatile bool ThrowOnNextError;
        }

        public static void Install(IServiceCollection services, Switch fault)
        {
            var original = services.Last(d => d.ServiceType == typeof(IChannelHealth));
            services.Remove(original);
            services.AddSingleton<IChannelHealth>(provider => new ThrowOnceHealth(
                (IChannelHealth)ActivatorUtilities.CreateInstance(provider, original.ImplementationType!), fault));
        }

        public ValueTask ReportSuccessAsync(string channelAccountId, CancellationToken cancellationToken = default) =>
            inner.ReportSuccessAsync(channelAccountId, cancellationToken);

        public ValueTask ReportErrorAsync(string channelAccountId, string error, CancellationToken cancellationToken = default)
        {
            // Only the outbox's report of the 429 (a poll's error report would take the fault otherwise).
            if (fault.ThrowOnNextError && error.Contains("429", StringComparison.Ordinal))
            {
                fault.ThrowOnNextError = false;
                throw new IOException("database is locked (injected)");
            }
            return inner.ReportErrorAsync(channelAccountId, error, cancellationToken);
        }
    }
}
