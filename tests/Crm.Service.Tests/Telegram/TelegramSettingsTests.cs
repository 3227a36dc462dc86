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
}
