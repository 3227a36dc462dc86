using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Telegram;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Orleans;

namespace Crm.Service.Tests.Telegram;

/// <summary>Webhook mode: registration, the secret token, limits, and a restart in the middle of a burst.</summary>
public sealed class TelegramWebhookTests
{
    private static HttpRequestMessage Post(string account, string body, string? secret = TelegramRig.Secret)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/connectors/telegram/{account}/webhook") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (secret is not null)
            request.Headers.Add(TelegramWebhookEndpoints.SecretHeader, secret);
        return request;
    }

    private static string Update(int updateId, JsonObject body)
    {
        body["update_id"] = updateId;
        return body.ToJsonString();
    }

    [Fact]
    public async Task The_bot_registers_its_webhook_with_the_secret_and_the_endpoint_refuses_everything_without_it()
    {
        await using var rig = await TelegramRig.StartAsync();
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA, mode: "webhook", secretToken: TelegramRig.Secret, publicBaseUrl: "https://crm.example.test/");
        await Eventually.WaitForAsync(() => Task.FromResult(bot.WebhookUrl), url => url is not null, what: "setWebhook");
        Assert.Equal("https://crm.example.test/connectors/telegram/tg/webhook", bot.WebhookUrl);
        Assert.Equal(TelegramRig.Secret, bot.WebhookSecret);

        using var client = rig.App.CreateClient();
        var body = Update(1, TelegramRig.PrivateMessage(1, "hi"));
        foreach (var wrong in new[] { null, "", "webhook-secret_012345678", TelegramRig.Secret + "x", TelegramRig.Secret.ToUpperInvariant() })
        {
            var refused = await client.SendAsync(Post("tg", body, wrong));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            var problem = await refused.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("urn:crm:problem:unauthorized", problem.GetProperty("type").GetString());
            Assert.Equal(TelegramWebhookEndpoints.SecretHeader, problem.GetProperty("field").GetString());
        }
        Assert.Empty(await rig.InboundAsync("tg"));
        Assert.Empty(await rig.KeptAsync("tg"));

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.SendAsync(Post("nobody", body))).StatusCode);
        var tooLarge = await client.SendAsync(Post("tg", Update(2, TelegramRig.PrivateMessage(2, new string('x', 1_100_000)))));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);

        var accepted = await client.SendAsync(Post("tg", body));
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        Assert.Equal("hi", Assert.Single(await rig.InboundAsync("tg")).Text);

        // From a caller who knows the secret, garbage is kept raw with a reason and acknowledged (Telegram would
        // otherwise resend it forever); nothing is stored as a message.
        foreach (var garbage in new[] { "not json at all", "[1,2,3]", "{\"update_id\":77,\"message\":{\"message_id\":\"seven\",\"chat\":5}}", "{\"message\":{}}" })
            Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Post("tg", garbage))).StatusCode);
        var kept = await rig.KeptAsync("tg");
        Assert.Equal(4, kept.Count);
        Assert.All(kept, k => Assert.StartsWith("Not a Telegram update", k.Reason, StringComparison.Ordinal));
        Assert.Contains(kept, k => k.Uid == 77);
        Assert.Equal("not json at all", Encoding.UTF8.GetString(Assert.Single(kept, k => k.Length == 15).Content!));
        Assert.Single(await rig.InboundAsync("tg"));
    }

    [Fact]
    public async Task Webhook_mode_without_a_secret_token_refuses_every_call_and_says_so_in_the_health()
    {
        await using var rig = await TelegramRig.StartAsync();
        rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        // The admin API refuses to save it so.
        using (var api = rig.App.Admin())
        {
            var unsaved = await api.PutAsJsonAsync("/api/v1/admin/channels/tg", new { kind = "telegram", settings = new { token = TelegramRig.TokenA, mode = "webhook" } });
            Assert.Equal(HttpStatusCode.UnprocessableEntity, unsaved.StatusCode);
            Assert.Equal("settings.secretToken", (await unsaved.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
        }
        // An account stored so before that check (written through the grain, as the admin API did then).
        await rig.App.Services.GetRequiredService<IGrainFactory>().GetGrain<IChannelAccountGrain>("tg").ConfigureAsync(new ChannelAccountSettings
        {
            Kind = ChannelKind.Telegram,
            Name = "tg",
            Settings = "{\"mode\":\"webhook\"}",
            SecretSettings = new Dictionary<string, string> { ["token"] = TelegramRig.TokenA },
        });
        await rig.App.Services.GetRequiredService<Crm.Service.Infrastructure.Channels.ChannelAccountDirectory>().RefreshSoonAsync("tg");
        using var client = rig.App.CreateClient();
        var refused = await client.SendAsync(Post("tg", Update(1, TelegramRig.PrivateMessage(1, "hi")), secret: "anything"));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        // The caller learns nothing about the account; the admin reads the reason in the health.
        Assert.DoesNotContain("secretToken", (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString());

        using var admin = rig.App.Admin();
        var view = await Eventually.WaitForAsync(() => admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/tg"),
            v => v.GetProperty("lastError").ValueKind == JsonValueKind.String, what: "the health error");
        Assert.Contains("secretToken", view.GetProperty("lastError").GetString());
        // Secrets never come back.
        Assert.DoesNotContain(TelegramRig.TokenA, view.GetRawText());
        Assert.Contains("token", view.GetProperty("secretSettings").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task A_token_revoked_after_saving_shows_getMe_refusal_in_the_health()
    {
        await using var rig = await TelegramRig.StartAsync();
        rig.Api.AddBot(TelegramRig.TokenB, 222222, "revoked_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenB);
        // Revoked at @BotFather after the save: the running loop learns it from Telegram and says so in the health.
        rig.Api.RevokeBot(TelegramRig.TokenB);
        using var admin = rig.App.Admin();
        var view = await Eventually.WaitForAsync(() => admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/tg"),
            v => v.GetProperty("lastError").GetString() == "getMe: 401 Unauthorized", what: "the health error");
        Assert.Equal("revoked_bot", view.GetProperty("settings").GetProperty("botUsername").GetString());
    }

    /// <summary>Stalls one hand-off until the host stops: a request in flight when the node goes down.</summary>
    private sealed class StallingHandOff(IInboundHandOff inner, string stallOn) : IInboundHandOff
    {
        public async Task<IngestResult> HandOffAsync(InboundMessage message, CancellationToken cancellationToken = default)
        {
            if (message.ExternalMessageId == stallOn)
                await Task.Delay(Timeout.Infinite, cancellationToken);
            return await inner.HandOffAsync(message, cancellationToken);
        }
    }

    [Fact]
    public async Task A_restart_in_the_middle_of_a_webhook_burst_loses_nothing_and_stores_nothing_twice()
    {
        await using var rig = await TelegramRig.StartAsync(services => services.AddSingleton<IInboundHandOff>(provider =>
            new StallingHandOff(ActivatorUtilities.CreateInstance<ConversationHandOff>(provider), $"{TelegramRig.UserId}:7")));
        rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA, mode: "webhook", secretToken: TelegramRig.Secret);
        var updates = Enumerable.Range(1, 20).Select(i => Update(1000 + i, TelegramRig.PrivateMessage(i, $"Burst {i}"))).ToList();

        // Telegram posts with up to max_connections requests at once; whatever is not answered 200 it posts again.
        var acknowledged = new HashSet<int>();
        using (var client = rig.App.CreateClient())
        {
            var calls = updates.Select(async (body, index) =>
            {
                try
                {
                    // Only the request meant to stall gets a short timeout: the others queue on one conversation.
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(index == 6 ? 5 : 60));
                    var response = await client.SendAsync(Post("tg", body), timeout.Token);
                    return (index, ok: response.StatusCode == HttpStatusCode.OK);
                }
                catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException or IOException)
                {
                    return (index, ok: false);
                }
            }).ToList();
            foreach (var (index, ok) in await Task.WhenAll(calls))
                if (ok)
                    acknowledged.Add(index);
        }
        Assert.DoesNotContain(6, acknowledged);
        Assert.True(acknowledged.Count >= 19 - 1, $"only {acknowledged.Count} acknowledged");

        await rig.RestartAsync();
        using (var client = rig.App.CreateClient())
        {
            // Redelivery of everything unacknowledged, and, as Telegram may, of some that were acknowledged too.
            foreach (var index in Enumerable.Range(0, 20).Where(i => !acknowledged.Contains(i) || i % 5 == 0))
                Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Post("tg", updates[index]))).StatusCode);
        }
        var stored = await rig.InboundAsync("tg");
        Assert.Equal(20, stored.Count);
        Assert.Equal(20, stored.Select(m => m.ExternalId).Distinct().Count());
        Assert.Single(stored.Select(m => m.TicketNumber).Distinct());
        Assert.Equal(1, await rig.App.QueryAsync(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.Tickets)));
    }
}
