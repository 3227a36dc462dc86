using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Telegram;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans;

namespace Crm.Service.Tests.Telegram;

/// <summary>The findings of the Telegram review (docs/connectors.md, "Review fixes"), each against the real app and the fake Bot API.</summary>
public sealed class TelegramReviewTests
{
    private static async Task<HttpStatusCode> PostAsync(TelegramRig rig, int updateId, JsonObject update, string account = "tg")
    {
        update["update_id"] = updateId;
        using var client = rig.App.CreateClient();
        var request = new HttpRequestMessage(HttpMethod.Post, $"/connectors/telegram/{account}/webhook") { Content = new StringContent(update.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.Add(TelegramWebhookEndpoints.SecretHeader, TelegramRig.Secret);
        return (await client.SendAsync(request)).StatusCode;
    }

    private static async Task<TelegramRig> WebhookRigAsync(Action<IServiceCollection>? services = null, IDictionary<string, string?>? settings = null, string groups = "conversation", string? welcomeText = null)
    {
        var rig = await TelegramRig.StartAsync(services, settings);
        rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA, mode: "webhook", secretToken: TelegramRig.Secret, groups: groups, welcomeText: welcomeText);
        return rig;
    }

    /// <summary>Every log message of every category, at every level the configuration lets through.</summary>
    private sealed class CollectingLogs : ILoggerProvider
    {
        public ConcurrentQueue<string> Lines { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, Lines);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Enqueue($"{category}: {formatter(state, exception)} {exception}");
        }
    }

    [Fact]
    public async Task T1_the_bot_token_never_reaches_the_logs_while_polling_and_downloading()
    {
        var logs = new CollectingLogs();
        await using var rig = await TelegramRig.StartAsync(services => services.AddSingleton<ILoggerProvider>(logs),
            new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Information" });
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        rig.Api.AddFile("doc-1", "documents/file_1.pdf", Encoding.ASCII.GetBytes("%PDF-1.4 x"));
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA);
        bot.Enqueue(TelegramRig.PrivateMessage(1, null, extra: new JsonObject
        {
            ["document"] = new JsonObject { ["file_id"] = "doc-1", ["file_unique_id"] = "d1", ["file_name"] = "a.pdf" },
        }));
        await rig.InboundCountReachedAsync("tg", 1);
        await Eventually.WaitForAsync(() => Task.FromResult(bot.Calls.Count(c => c == "getUpdates")), n => n >= 3, what: "three getUpdates");

        Assert.Contains(logs.Lines, l => l.Contains("polls for updates", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Lines, l => l.Contains(TelegramRig.TokenA.Split(':')[1], StringComparison.Ordinal));
    }

    [Fact]
    public async Task T2_live_location_moves_and_edits_never_reopen_the_ticket_and_edits_are_keyed_by_what_they_show()
    {
        await using var rig = await WebhookRigAsync();
        Location(out var first, 52.52, 13.40, editDate: null);
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 1, first));
        var stored = Assert.Single(await rig.InboundAsync("tg"));
        using (var agent = await rig.App.AgentAsync())
            (await agent.PatchAsJsonAsync($"/api/v1/tickets/{stored.TicketNumber}", new { status = "resolved" })).EnsureSuccessStatusCode();

        for (var i = 1; i <= 3; i++)
        {
            Location(out var move, 52.52 + i / 100.0, 13.40, editDate: 1_700_000_100 + i);
            Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 1 + i, move));
        }
        Assert.Single(await rig.InboundAsync("tg"));

        // A text edit joins the ticket for the record but does not reopen it; two edits within one second are both
        // kept, and an edit that shows nothing new (a reaction) under a later edit_date is a duplicate.
        await PostAsync(rig, 10, TelegramRig.PrivateMessage(2, "Order 1"));
        using (var agent = await rig.App.AgentAsync())
            (await agent.PatchAsJsonAsync($"/api/v1/tickets/{stored.TicketNumber}", new { status = "resolved" })).EnsureSuccessStatusCode();
        await PostAsync(rig, 11, TelegramRig.PrivateMessage(2, "Order 12", kind: "edited_message", editDate: 1_700_000_500));
        await PostAsync(rig, 12, TelegramRig.PrivateMessage(2, "Order 123", kind: "edited_message", editDate: 1_700_000_500));
        await PostAsync(rig, 13, TelegramRig.PrivateMessage(2, "Order 123", kind: "edited_message", editDate: 1_700_000_900));
        var messages = await rig.InboundAsync("tg");
        Assert.Equal(["Order 1", "✏️ Edit of message 424242:2:\nOrder 12", "✏️ Edit of message 424242:2:\nOrder 123"], messages.Skip(1).Select(m => m.Text));
        Assert.All(messages.Skip(2), m => Assert.StartsWith($"{TelegramRig.UserId}:2:edit:", m.ExternalId, StringComparison.Ordinal));
        Assert.Single(messages.Select(m => m.TicketNumber).Distinct());
        var ticket = await rig.App.QueryAsync(db => db.Tickets.AsNoTracking().SingleAsync());
        Assert.Equal(TicketStatus.Resolved, ticket.Status);

        static void Location(out JsonObject update, double latitude, double longitude, long? editDate) =>
            update = TelegramRig.PrivateMessage(1, null, kind: editDate is null ? "message" : "edited_message", editDate: editDate, extra: new JsonObject
            {
                ["location"] = new JsonObject { ["latitude"] = latitude, ["longitude"] = longitude, ["live_period"] = 3600 },
            });
    }

    [Fact]
    public async Task T4_a_download_that_stalls_is_cut_off_and_after_its_attempts_the_bot_reads_on()
    {
        await using var rig = await TelegramRig.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Channels:Telegram:RequestTimeout"] = "00:00:01",
            ["Channels:Telegram:MaxUpdateAttempts"] = "3",
        });
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        rig.Api.AddFile("stuck", "videos/stuck.mp4", new byte[100]);
        rig.Api.StalledDownloads["videos/stuck.mp4"] = true;
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA);
        var poison = bot.Enqueue(TelegramRig.PrivateMessage(1, null, extra: new JsonObject
        {
            ["video"] = new JsonObject { ["file_id"] = "stuck", ["file_unique_id"] = "st", ["width"] = 1, ["height"] = 1, ["duration"] = 1, ["file_size"] = 100 },
        }));
        bot.Enqueue(TelegramRig.PrivateMessage(2, "Anyone there?", userId: 777));

        var stored = Assert.Single(await rig.InboundCountReachedAsync("tg", 1));
        Assert.Equal("Anyone there?", stored.Text);
        Assert.Equal(3, rig.Api.Downloads["videos/stuck.mp4"]);
        var kept = Assert.Single(await rig.KeptAsync("tg"), k => k.Uid == poison);
        Assert.Equal(TelegramIngest.QuarantineFolder, kept.Folder);
        Assert.Contains("Not handled in 3 attempts", kept.Reason);
        Assert.Contains("did not finish within", kept.Reason);
    }

    [Fact]
    public async Task T5_a_redelivered_message_is_not_downloaded_again_and_the_webhook_asks_for_few_connections()
    {
        await using var rig = await TelegramRig.StartAsync();
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA, mode: "webhook", secretToken: TelegramRig.Secret, publicBaseUrl: "https://crm.example.test/");
        await Eventually.WaitForAsync(() => Task.FromResult(bot.WebhookUrl), url => url is not null, what: "setWebhook");
        Assert.Equal(8, bot.WebhookMaxConnections);

        rig.Api.AddFile("doc-1", "documents/file_1.pdf", Encoding.ASCII.GetBytes("%PDF-1.4 invoice"));
        var update = TelegramRig.PrivateMessage(1, null, extra: new JsonObject
        {
            ["document"] = new JsonObject { ["file_id"] = "doc-1", ["file_unique_id"] = "d1", ["file_name"] = "invoice.pdf", ["file_size"] = 16 },
        });
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 1, (JsonObject)update.DeepClone()));
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 1, (JsonObject)update.DeepClone()));
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 2, update));
        Assert.Single(await rig.InboundAsync("tg"));
        Assert.Equal(1, await rig.App.QueryAsync(db => db.Attachments.CountAsync()));
        Assert.Equal(1, rig.Api.Downloads["documents/file_1.pdf"]);
    }

    [Fact]
    public async Task T6_a_business_message_is_kept_raw_and_does_not_take_the_users_own_chat()
    {
        await using var rig = await WebhookRigAsync();
        var business = TelegramRig.PrivateMessage(1, "Hello from the owner", userId: 500, kind: "business_message");
        business["business_message"]!["chat"]!["id"] = 600;
        business["business_message"]!["business_connection_id"] = "bc-1";
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 1, business));
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 2, TelegramRig.PrivateMessage(1, "I need help", userId: 600)));

        var stored = Assert.Single(await rig.InboundAsync("tg"));
        Assert.Equal("I need help", stored.Text);
        var conversation = await rig.App.QueryAsync(db => db.Conversations.AsNoTracking().SingleAsync());
        Assert.Equal(("600", "telegram:600"), (conversation.ThreadKey, conversation.CustomerIdentity));
        var kept = Assert.Single(await rig.KeptAsync("tg"));
        Assert.Contains("Business messages are not supported", kept.Reason);
    }

    [Fact]
    public async Task T7_updates_of_an_ignored_group_are_deleted_after_the_retention()
    {
        await using var rig = await WebhookRigAsync(groups: "ignore", settings: new Dictionary<string, string?> { ["Channels:Telegram:IgnoredRetention"] = "00:00:00" });
        for (var i = 1; i <= 20; i++)
        {
            var group = new JsonObject
            {
                ["message"] = new JsonObject
                {
                    ["message_id"] = i,
                    ["from"] = new JsonObject { ["id"] = 1000 + i, ["is_bot"] = false, ["first_name"] = "Stranger" },
                    ["chat"] = new JsonObject { ["id"] = -100500, ["type"] = "supergroup", ["title"] = "Some group" },
                    ["date"] = 1_700_000_000 + i,
                    ["text"] = $"Private chatter {i}",
                },
            };
            Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, i, group));
        }
        var kept = await rig.KeptAsync("tg");
        Assert.True(kept.Count <= 1, $"{kept.Count} rows kept");
        Assert.All(kept, k => Assert.Equal(TelegramIngest.IgnoredFolder, k.Folder));
        Assert.Empty(await rig.InboundAsync("tg"));
    }

    /// <summary>Refuses one message as if its channel had been disabled on the way (the core's answer), once.</summary>
    private sealed class DisabledOnceHandOff(IInboundHandOff inner) : IInboundHandOff
    {
        public int Refused;

        public Task<IngestResult> HandOffAsync(InboundMessage message, CancellationToken cancellationToken = default) =>
            Interlocked.Increment(ref Refused) == 1
                ? throw new DomainException(DomainErrorKind.Forbidden, $"Channel '{message.ChannelAccountId}' is disabled.", "channelId")
                : inner.HandOffAsync(message, cancellationToken);
    }

    [Fact]
    public async Task T8_a_message_refused_because_its_channel_was_disabled_is_not_acknowledged_and_is_stored_on_redelivery()
    {
        await using var rig = await WebhookRigAsync(services => services.AddSingleton<IInboundHandOff>(provider =>
            new DisabledOnceHandOff(ActivatorUtilities.CreateInstance<ConversationHandOff>(provider))));
        var update = TelegramRig.PrivateMessage(1, "Where is my parcel?");
        Assert.NotEqual(HttpStatusCode.OK, await PostAsync(rig, 1, (JsonObject)update.DeepClone()));
        Assert.Empty(await rig.KeptAsync("tg"));
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 1, update));
        Assert.Equal("Where is my parcel?", Assert.Single(await rig.InboundAsync("tg")).Text);
    }

    [Fact]
    public async Task T9_a_file_over_the_cores_attachment_limit_becomes_a_note_and_the_caption_is_stored()
    {
        await using var rig = await WebhookRigAsync(settings: new Dictionary<string, string?> { ["Ingest:MaxAttachmentBytes"] = (1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        rig.Api.AddFile("big-photo", "photos/big.jpg", new byte[2 * 1024 * 1024]);
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 1, TelegramRig.PrivateMessage(1, null, extra: new JsonObject
        {
            ["photo"] = new JsonArray(new JsonObject { ["file_id"] = "big-photo", ["file_unique_id"] = "bp", ["width"] = 4000, ["height"] = 3000 }),
            ["caption"] = "help",
        })));
        var stored = Assert.Single(await rig.InboundAsync("tg"));
        Assert.StartsWith("help", stored.Text, StringComparison.Ordinal);
        Assert.Contains("larger than the 1 MB this helpdesk accepts per file", stored.Text);
        Assert.Empty(await rig.KeptAsync("tg"));
    }

    [Fact]
    public async Task T10_the_same_start_under_a_new_update_id_or_at_the_same_time_is_welcomed_once()
    {
        await using var rig = await WebhookRigAsync(welcomeText: "Welcome!", settings: new Dictionary<string, string?> { ["Channels:Telegram:WelcomeInterval"] = "00:00:00" });
        var bot = rig.Api.BotOf(TelegramRig.TokenA);
        var start = TelegramRig.PrivateMessage(7, "/start");
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 100, (JsonObject)start.DeepClone()));
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 101, (JsonObject)start.DeepClone()));
        // Two deliveries of another /start at once.
        var again = TelegramRig.PrivateMessage(8, "/start");
        var both = await Task.WhenAll(PostAsync(rig, 102, (JsonObject)again.DeepClone()), PostAsync(rig, 102, (JsonObject)again.DeepClone()));
        Assert.All(both, status => Assert.Equal(HttpStatusCode.OK, status));
        Assert.Equal(2, bot.Sent.Count(s => s.Method == "sendMessage"));
    }

    [Fact]
    public async Task T10_a_chat_sending_start_in_a_loop_is_welcomed_once_per_interval()
    {
        // A long interval: the test does not depend on where the period's boundaries fall.
        await using var rig = await WebhookRigAsync(welcomeText: "Welcome!", settings: new Dictionary<string, string?> { ["Channels:Telegram:WelcomeInterval"] = "7.00:00:00" });
        var bot = rig.Api.BotOf(TelegramRig.TokenA);
        for (var i = 1; i <= 5; i++)
            Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, i, TelegramRig.PrivateMessage(i, "/start")));
        Assert.Single(bot.Sent);
    }

    [Fact]
    public async Task T11_the_users_own_number_without_plus_is_linked_as_the_international_number()
    {
        await using var rig = await WebhookRigAsync();
        await PostAsync(rig, 1, TelegramRig.PrivateMessage(1, null, extra: new JsonObject
        {
            ["contact"] = new JsonObject { ["phone_number"] = "4915123456789", ["first_name"] = "Ada", ["user_id"] = TelegramRig.UserId },
        }));
        var phone = await rig.App.QueryAsync(db => db.Identities.AsNoTracking().SingleAsync(i => i.Kind == IdentityKind.Phone));
        Assert.Equal("phone:+4915123456789", phone.Key);
    }

    [Fact]
    public async Task T11_concurrent_first_contacts_sharing_one_number_link_it_once_and_never_move_it()
    {
        await using var rig = await WebhookRigAsync();
        // Several users share "their own" number at the same moment (a family phone; or one of them racing an API link):
        // one customer gets it, and nobody's link moves it away afterwards.
        var posts = Enumerable.Range(0, 8).Select(i => PostAsync(rig, 100 + i, TelegramRig.PrivateMessage(1, null, userId: 7000 + i, extra: new JsonObject
        {
            ["contact"] = new JsonObject { ["phone_number"] = "4915123456789", ["first_name"] = "Ada", ["user_id"] = 7000 + i },
        })));
        Assert.All(await Task.WhenAll(posts), status => Assert.Equal(HttpStatusCode.OK, status));

        var phone = await rig.App.QueryAsync(db => db.Identities.AsNoTracking().SingleAsync(i => i.Kind == IdentityKind.Phone));
        var audit = await rig.App.QueryAsync(db => db.Audit.AsNoTracking().Where(a => a.Field == "identity" && (a.NewValue == phone.Key || a.OldValue == phone.Key)).ToListAsync());
        Assert.Equal("identity-linked", Assert.Single(audit).Action);
        var holder = await rig.App.QueryAsync(db => db.Identities.AsNoTracking().Where(i => i.CustomerId == phone.CustomerId && i.Kind == IdentityKind.Telegram).CountAsync());
        Assert.Equal(1, holder);
    }

    /// <summary>Holds every answer of a GetCustomerAsync on a phone identity until <paramref name="parties"/> callers
    /// have theirs (or 20 s passed): the widest window a check-then-link from outside the grain can have, made
    /// certain instead of lucky. A link decided inside the grain asks no such question and is not held.</summary>
    private sealed class PhoneLookupBarrier(int parties) : IOutgoingGrainCallFilter
    {
        private readonly TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _arrived;

        public int Held => Volatile.Read(ref _arrived);

        public async Task Invoke(IOutgoingGrainCallContext context)
        {
            await context.Invoke();
            if (context.MethodName == nameof(IIdentityGrain.GetCustomerAsync) && context.TargetId.Key.ToString().StartsWith("phone:", StringComparison.Ordinal))
            {
                if (Interlocked.Increment(ref _arrived) >= parties)
                    _all.TrySetResult();
                await Task.WhenAny(_all.Task, Task.Delay(TimeSpan.FromSeconds(20)));
            }
        }
    }

    [Fact]
    public async Task T11_two_first_contacts_sharing_one_number_in_the_worst_interleaving_link_it_once()
    {
        var barrier = new PhoneLookupBarrier(2);
        await using var rig = await WebhookRigAsync(services => services.AddSingleton<IOutgoingGrainCallFilter>(barrier));
        var posts = Enumerable.Range(0, 2).Select(i => PostAsync(rig, 200 + i, TelegramRig.PrivateMessage(1, null, userId: 8000 + i, extra: new JsonObject
        {
            ["contact"] = new JsonObject { ["phone_number"] = "+4915000000001", ["first_name"] = "Family", ["user_id"] = 8000 + i },
        })));
        Assert.All(await Task.WhenAll(posts), status => Assert.Equal(HttpStatusCode.OK, status));

        var phone = await rig.App.QueryAsync(db => db.Identities.AsNoTracking().SingleAsync(i => i.Kind == IdentityKind.Phone));
        var audit = await rig.App.QueryAsync(db => db.Audit.AsNoTracking().Where(a => a.Field == "identity" && (a.NewValue == phone.Key || a.OldValue == phone.Key)).ToListAsync());
        // Linked once, never moved from one customer to the other.
        Assert.Equal("identity-linked", Assert.Single(audit).Action);
    }

    [Fact]
    public async Task A_caption_edit_does_not_download_the_file_again_and_a_replaced_file_is_downloaded()
    {
        await using var rig = await WebhookRigAsync();
        var pdf = "%PDF-1.4 invoice"u8.ToArray();
        rig.Api.AddFile("doc-1", "documents/file_1.pdf", pdf);
        rig.Api.AddFile("doc-2", "documents/file_2.pdf", "%PDF-1.4 corrected"u8.ToArray());
        JsonObject Document(string fileId, string uniqueId, string caption, long? editDate) => TelegramRig.PrivateMessage(1, null, kind: editDate is null ? "message" : "edited_message", editDate: editDate, extra: new JsonObject
        {
            ["document"] = new JsonObject { ["file_id"] = fileId, ["file_unique_id"] = uniqueId, ["file_name"] = "invoice.pdf", ["mime_type"] = "application/pdf" },
            ["caption"] = caption,
        });

        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 1, Document("doc-1", "d1", "My invoice", null)));
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 2, Document("doc-1", "d1", "My invoice from May", 1_700_000_100)));
        var messages = await rig.InboundAsync("tg");
        Assert.Equal(2, messages.Count);
        Assert.Contains("My invoice from May", messages[1].Text);
        Assert.Contains("[The document 'invoice.pdf' is unchanged; it is on the earlier version of the message.]", messages[1].Text);
        Assert.Equal(1, rig.Api.Downloads["documents/file_1.pdf"]);
        Assert.Equal(0, await rig.App.QueryAsync(db => db.Attachments.CountAsync(a => a.MessageId == messages[1].Id)));

        // The file itself replaced (editMessageMedia: a new file_unique_id): that one is fetched.
        Assert.Equal(HttpStatusCode.OK, await PostAsync(rig, 3, Document("doc-2", "d2", "My invoice from May", 1_700_000_200)));
        Assert.Equal(1, rig.Api.Downloads["documents/file_2.pdf"]);
        Assert.Equal(1, rig.Api.Downloads["documents/file_1.pdf"]);
    }

    [Fact]
    public async Task The_webhook_is_rate_limited_per_bot_and_strangers_cannot_use_up_telegrams_budget()
    {
        await using var rig = await WebhookRigAsync(settings: new Dictionary<string, string?>
        {
            ["Channels:Telegram:WebhookRequestsPerSecond"] = "1",
            ["Channels:Telegram:WebhookBurst"] = "2",
        });
        using var client = rig.App.CreateClient();
        // A stranger floods the bot's URL without the secret: refused, and soon throttled in a bucket of its own.
        var strangers = new List<HttpStatusCode>();
        for (var i = 0; i < 30; i++)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/connectors/telegram/tg/webhook") { Content = new StringContent("{\"update_id\":1}", Encoding.UTF8, "application/json") };
            request.Headers.Add(TelegramWebhookEndpoints.SecretHeader, "wrong-secret");
            strangers.Add((await client.SendAsync(request)).StatusCode);
        }
        Assert.Contains(HttpStatusCode.TooManyRequests, strangers);
        Assert.DoesNotContain(HttpStatusCode.OK, strangers);

        // Telegram's deliveries still have their whole burst; past it, 429 (Telegram delivers again later).
        var genuine = new List<HttpStatusCode>();
        for (var i = 1; i <= 6; i++)
            genuine.Add(await PostAsync(rig, i, TelegramRig.PrivateMessage(i, $"Message {i}")));
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK], genuine.Take(2));
        Assert.Contains(HttpStatusCode.TooManyRequests, genuine);
    }

    [Fact]
    public async Task T13_the_webhook_answers_every_refusal_before_the_secret_the_same_way()
    {
        await using var rig = await WebhookRigAsync();
        rig.Api.AddBot(TelegramRig.TokenB, 222222, "polling_bot");
        await rig.ConfigureBotAsync("polling", TelegramRig.TokenB);
        using var client = rig.App.CreateClient();
        var answers = new List<(HttpStatusCode, string)>();
        foreach (var (account, secret) in new[] { ("nobody", TelegramRig.Secret), ("polling", TelegramRig.Secret), ("tg", "wrong-secret") })
        {
            var request = new HttpRequestMessage(HttpMethod.Post, $"/connectors/telegram/{account}/webhook") { Content = new StringContent("{\"update_id\":1}", Encoding.UTF8, "application/json") };
            request.Headers.Add(TelegramWebhookEndpoints.SecretHeader, secret);
            var response = await client.SendAsync(request);
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
            answers.Add((response.StatusCode, string.Join('|', new[] { "type", "title", "detail", "field" }.Select(p => problem.TryGetProperty(p, out var v) ? v.ToString() : ""))));
        }
        Assert.Single(answers.Distinct());
        Assert.Equal(HttpStatusCode.Unauthorized, answers[0].Item1);
    }

    [Fact]
    public async Task T14_a_webhook_telegram_cannot_deliver_to_shows_in_the_health()
    {
        await using var rig = await TelegramRig.StartAsync(settings: new Dictionary<string, string?> { ["Channels:Telegram:WebhookCheckInterval"] = "00:00:00.200" });
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA, mode: "webhook", secretToken: TelegramRig.Secret, publicBaseUrl: "https://crm.example.test/");
        await Eventually.WaitForAsync(() => Task.FromResult(bot.Calls.Count(c => c == "getWebhookInfo")), n => n >= 1, what: "getWebhookInfo");
        bot.WebhookError = "Wrong response from the webhook: 401 Unauthorized";
        bot.PendingUpdates = 12;
        using var admin = rig.App.Admin();
        var view = await Eventually.WaitForAsync(() => admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/tg"),
            v => v.GetProperty("lastError").ValueKind == JsonValueKind.String, what: "the delivery error in the health");
        Assert.Contains("Wrong response from the webhook: 401 Unauthorized", view.GetProperty("lastError").GetString());
        Assert.Contains("12 updates waiting", view.GetProperty("lastError").GetString());

        // Someone registered another URL: ours is registered again.
        bot.WebhookError = null;
        bot.WebhookUrl = "https://attacker.example.test/hook";
        await Eventually.WaitForAsync(() => Task.FromResult(bot.WebhookUrl), url => url == "https://crm.example.test/connectors/telegram/tg/webhook", what: "the webhook registered again");
    }
}
