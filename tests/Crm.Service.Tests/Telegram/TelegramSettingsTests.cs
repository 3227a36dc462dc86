using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Telegram;

/// <summary>The settings of kind "telegram" through the admin API, and switching a bot between webhook and polling.</summary>
public sealed class TelegramSettingsTests
{
    [Theory]
    [InlineData("{\"token\":\"not-a-token\"}", "settings.token")]
    [InlineData("{\"token\":\"111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"secretToken\":\"has space\"}", "settings.secretToken")]
    [InlineData("{\"publicBaseUrl\":\"http://crm.example.test\"}", "settings.publicBaseUrl")]
    [InlineData("{\"publicBaseUrl\":\"https://crm.example.test/?x=1\"}", "settings.publicBaseUrl")]
    [InlineData("{\"mode\":\"push\"}", "settings.mode")]
    [InlineData("{\"groups\":\"everything\"}", "settings.groups")]
    [InlineData("{\"botName\":\"x\"}", "settings.botName")]
    public async Task Invalid_settings_are_refused_naming_the_field(string settings, string field)
    {
        await using var rig = await TelegramRig.StartAsync();
        using var admin = rig.App.Admin();
        var response = await admin.PutAsync("/api/v1/admin/channels/tg",
            new StringContent($"{{\"kind\":\"telegram\",\"settings\":{settings}}}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal(field, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
    }

    [Fact]
    public async Task Switching_from_webhook_to_polling_deletes_the_webhook_and_polls_without_a_restart_keeping_the_token()
    {
        await using var rig = await TelegramRig.StartAsync();
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        await rig.ConfigureBotAsync("tg", TelegramRig.TokenA, mode: "webhook", secretToken: TelegramRig.Secret, publicBaseUrl: "https://crm.example.test");
        await Eventually.WaitForAsync(() => Task.FromResult(bot.WebhookUrl), url => url is not null, what: "setWebhook");
        bot.Enqueue(TelegramRig.PrivateMessage(1, "Sent while the webhook was set"));

        // A PUT without the token keeps the stored one.
        using (var admin = rig.App.Admin())
        {
            var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/tg", new { kind = "telegram", settings = new { mode = "polling" } });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var view = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.DoesNotContain(TelegramRig.TokenA, view.GetRawText());
        }
        var stored = await rig.InboundCountReachedAsync("tg", 1);
        Assert.Equal("Sent while the webhook was set", stored[0].Text);
        Assert.Null(bot.WebhookUrl);
        Assert.Contains("deleteWebhook", bot.Calls);
    }

    private static Task<HttpResponseMessage> PutAsync(HttpClient admin, object settings, bool? enabled = null) =>
        admin.PutAsJsonAsync("/api/v1/admin/channels/tg", new { kind = "telegram", name = "tg", enabled, settings });

    [Fact]
    public async Task Saving_a_bot_asks_getMe_with_its_token_and_stores_the_username()
    {
        await using var rig = await TelegramRig.StartAsync();
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        using var admin = rig.App.Admin();
        // A username the admin sends is not taken: Telegram's answer is.
        var response = await PutAsync(admin, new { token = TelegramRig.TokenA, botUsername = "someone_else" });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // The answer of the PUT itself carries the username: getMe ran before the save, not in the loop afterwards.
        var saved = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("support_bot", saved.GetProperty("settings").GetProperty("botUsername").GetString());
        Assert.Contains("getMe", bot.Calls);
        var view = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/tg");
        Assert.Equal("support_bot", view.GetProperty("settings").GetProperty("botUsername").GetString());
        Assert.DoesNotContain(TelegramRig.TokenA, view.GetRawText());
    }

    [Fact]
    public async Task A_token_Telegram_refuses_is_a_422_in_Telegrams_words_and_nothing_is_saved()
    {
        await using var rig = await TelegramRig.StartAsync();
        using var admin = rig.App.Admin();
        var refused = await PutAsync(admin, new { token = TelegramRig.TokenB });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("settings.token", problem.GetProperty("field").GetString());
        Assert.Contains("getMe: 401 Unauthorized", problem.GetProperty("detail").GetString());
        Assert.DoesNotContain(TelegramRig.TokenB, problem.GetRawText());
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/admin/channels/tg")).StatusCode);

        // An existing bot: a new token Telegram refuses changes nothing; the old token and username stay.
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        Assert.Equal(HttpStatusCode.OK, (await PutAsync(admin, new { token = TelegramRig.TokenA, welcomeText = "Hello" })).StatusCode);
        refused = await PutAsync(admin, new { token = TelegramRig.TokenB, welcomeText = "Changed" });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        var view = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/tg");
        Assert.Equal("Hello", view.GetProperty("settings").GetProperty("welcomeText").GetString());
        Assert.Equal("support_bot", view.GetProperty("settings").GetProperty("botUsername").GetString());
        bot.Enqueue(TelegramRig.PrivateMessage(1, "still read with the old token"));
        Assert.Equal("still read with the old token", (await rig.InboundCountReachedAsync("tg", 1))[0].Text);

        // No token at all for an enabled bot is refused as well.
        await using var other = await TelegramRig.StartAsync();
        using var otherAdmin = other.App.Admin();
        refused = await otherAdmin.PutAsJsonAsync("/api/v1/admin/channels/tg2", new { kind = "telegram", settings = new { welcomeText = "Hi" } });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Equal("settings.token", (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
    }

    [Fact]
    public async Task A_save_without_the_token_checks_the_stored_one_and_a_disabled_bot_is_not_checked()
    {
        await using var rig = await TelegramRig.StartAsync();
        var bot = rig.Api.AddBot(TelegramRig.TokenA, 111111, "support_bot");
        using var admin = rig.App.Admin();
        Assert.Equal(HttpStatusCode.OK, (await PutAsync(admin, new { token = TelegramRig.TokenA })).StatusCode);

        // The token left out is the stored one, and that is what getMe is asked with.
        var response = await PutAsync(admin, new { welcomeText = "Hello" });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("support_bot", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("settings").GetProperty("botUsername").GetString());

        // Revoked at @BotFather: saving it enabled is refused, but an admin can still switch it off (the same getMe
        // would refuse it), and the username stays while the token is the same.
        rig.Api.RevokeBot(TelegramRig.TokenA);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await PutAsync(admin, new { welcomeText = "Hello" })).StatusCode);
        response = await PutAsync(admin, new { welcomeText = "Hello" }, enabled: false);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var view = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(view.GetProperty("enabled").GetBoolean());
        Assert.Equal("support_bot", view.GetProperty("settings").GetProperty("botUsername").GetString());
        // A new token on a disabled bot: not checked, and the old username no longer describes it.
        response = await PutAsync(admin, new { token = TelegramRig.TokenB }, enabled: false);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(JsonValueKind.Null, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("settings").GetProperty("botUsername").ValueKind);
    }
}
