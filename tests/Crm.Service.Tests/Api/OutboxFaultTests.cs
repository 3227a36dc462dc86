using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Api;

/// <summary>The outbox when its own bookkeeping fails: no second send of a sent reply, no status going back, no spinning.</summary>
public sealed class OutboxFaultTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private WebhookReceiver _bridge = null!;
    private CrmApp _app = null!;

    public async Task InitializeAsync()
    {
        _bridge = await WebhookReceiver.StartAsync();
        _app = new CrmApp(_data.Path, new Dictionary<string, string?> { ["Outbox:PollInterval"] = "01:00:00" }) { FaultyStore = true };
        await _app.CreateApiChannelAsync(webhookUrl: _bridge.Url);
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _bridge.DisposeAsync();
        _data.Dispose();
    }

    private static bool OnlyOutboxUpdates(WriteSet writes) => writes.Operations.All(o => o is UpdateRow { Record: OutboxRecord });

    private async Task<(long Ticket, Guid Reply, HttpClient Agent)> ReplyAsync(string text)
    {
        var posted = await (await _app.PostMessageAsync(new { messageId = "in-" + text, sender = new { id = "u-" + text }, text = "Help" }))
            .Content.ReadFromJsonAsync<JsonElement>();
        var ticket = posted.GetProperty("ticketNumber").GetInt64();
        var agent = await _app.AgentAsync("agent-" + text);
        var response = await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (ticket, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid(), agent);
    }

    private Task<OutboxRecord> OutboxAsync(Guid id) => _app.QueryAsync(db => db.Outbox.AsNoTracking().SingleAsync(o => o.MessageId == id));

    [Fact]
    public async Task A_reply_sent_before_its_bookkeeping_failed_is_not_sent_again_and_stays_sent()
    {
        // The send succeeds and is recorded as sent, then the outbox row's final commit fails (as a crash there would).
        _app.Store.FailNextCommitWhere(writes => OnlyOutboxUpdates(writes) && writes.Operations.Any(o => o is UpdateRow { Record: OutboxRecord { State: OutboxState.Done } }));
        _bridge.Answers.Enqueue(200);
        _bridge.Answers.Enqueue(422); // what a bridge that drops repeats might answer to a second copy
        var (ticket, reply, agent) = await ReplyAsync("once");
        await Eventually.WaitForAsync(() => Task.FromResult(_app.Store.Refused), refused => refused == 1, what: "the failed bookkeeping commit");

        // The row is still pending; when it is due again the outbox finds the message sent and closes the row.
        await _app.QueryAsync(db => db.Outbox.Where(o => o.MessageId == reply).ExecuteUpdateAsync(s => s.SetProperty(o => o.NextAttemptAt, DateTimeOffset.UtcNow.AddMinutes(-1))));
        _app.Services.GetRequiredService<IOutboxSignal>().Notify();
        await Eventually.WaitForAsync(() => OutboxAsync(reply), o => o.State != OutboxState.Pending, what: "the outbox row closed");

        Assert.Equal(OutboxState.Done, (await OutboxAsync(reply)).State);
        Assert.Single(_bridge.Requests);
        var view = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{ticket}");
        Assert.Equal("sent", view.GetProperty("timeline").EnumerateArray().Single(m => m.GetProperty("id").GetGuid() == reply).GetProperty("delivery").GetString());
    }

    [Fact]
    public async Task An_outbox_whose_commits_fail_waits_instead_of_spinning()
    {
        _app.Store.FailEveryCommitWhere(OnlyOutboxUpdates);
        await ReplyAsync("stuck");
        await Eventually.WaitForAsync(() => Task.FromResult(_app.Store.Refused), refused => refused >= 1, what: "a refused outbox commit");

        // With a poll interval of an hour, only the reply's wake-up may try; a loop that goes round at once would
        // try thousands of times meanwhile.
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.InRange(_app.Store.Refused, 1, 2);
        _app.Store.FailEveryCommitWhere(null);
    }
}
