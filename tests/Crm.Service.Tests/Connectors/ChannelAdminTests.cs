using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Service.Grains.Storage;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Connectors;

/// <summary>The admin side of channel accounts: secrets shown once and kept encrypted, typed settings, health.</summary>
public sealed class ChannelAdminTests : AppTest
{
    private static object Message(string id, string sender = "+15550102030") => new { messageId = id, sender = new { id = sender, kind = "phone" }, text = "hi" };

    [Fact]
    public async Task The_channel_secret_is_never_in_a_get_or_a_put_answer()
    {
        using var admin = App.Admin();

        var got = await admin.GetStringAsync("/api/v1/admin/channels/bridge");
        var put = await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "Renamed" });
        var putAnswer = await put.Content.ReadAsStringAsync();

        put.EnsureSuccessStatusCode();
        Assert.DoesNotContain(CrmApp.ChannelSecret, got, StringComparison.Ordinal);
        Assert.DoesNotContain(CrmApp.ChannelSecret, putAnswer, StringComparison.Ordinal);
        Assert.False(JsonDocument.Parse(got).RootElement.TryGetProperty("secret", out _));
        Assert.False(JsonDocument.Parse(putAnswer).RootElement.TryGetProperty("secret", out _));
        Assert.True(JsonDocument.Parse(got).RootElement.GetProperty("hasSecret").GetBoolean());
    }

    [Fact]
    public async Task A_generated_secret_is_shown_on_creation_and_on_rotation_only_and_the_newest_one_verifies()
    {
        using var admin = App.Admin();

        var created = await (await admin.PutAsJsonAsync("/api/v1/admin/channels/fresh", new { kind = "api", name = "Fresh" })).Content.ReadFromJsonAsync<JsonElement>();
        var first = created.GetProperty("secret").GetString()!;
        var again = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/fresh");
        var acceptedWithFirst = await App.PostMessageAsync(Message("r-1"), "fresh", first);
        var rotation = await admin.PostAsync("/api/v1/admin/channels/fresh/rotate-secret", null);
        var second = (await rotation.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("secret").GetString()!;

        Assert.True(first.Length >= 32);
        Assert.False(again.TryGetProperty("secret", out _));
        Assert.Equal(HttpStatusCode.Accepted, acceptedWithFirst.StatusCode);
        Assert.NotEqual(first, second);
        Assert.Equal(HttpStatusCode.Unauthorized, (await App.PostMessageAsync(Message("r-2"), "fresh", first)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await App.PostMessageAsync(Message("r-3"), "fresh", second)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsync("/api/v1/admin/channels/no-such/rotate-secret", null)).StatusCode);
    }

    [Fact]
    public async Task Secrets_are_stored_encrypted()
    {
        var stored = await App.QueryAsync(db => db.ChannelAccounts.AsNoTracking().Where(c => c.Id == "bridge").Select(c => c.Secret).SingleAsync());

        Assert.StartsWith(ProtectedSecrets.Marker, stored, StringComparison.Ordinal);
        Assert.DoesNotContain(CrmApp.ChannelSecret, stored, StringComparison.Ordinal);
        Assert.Equal(CrmApp.ChannelSecret, App.Services.GetRequiredService<ISecretProtector>().Unprotect(stored!));
        // The key ring lives in the store (shared by every node), no longer in a folder of one node.
        Assert.True(await App.QueryAsync(db => db.DataProtectionKeys.AnyAsync()), "the key ring lives in the store");
        Assert.False(Directory.Exists(Path.Combine(App.DataDirectory, "keys")) && Directory.EnumerateFiles(Path.Combine(App.DataDirectory, "keys"), "*.xml").Any());
    }

    public static TheoryData<string, string> BadSettings => new()
    {
        { """{"kind":"api","name":"x","settings":{"webhookUrl":"ftp://example.com/hook"}}""", "settings.webhookUrl" },
        { """{"kind":"api","name":"x","webhookUrl":"not a url"}""", "settings.webhookUrl" },
        { """{"kind":"api","name":"x","settings":{"webhookUrl":5}}""", "settings.webhookUrl" },
        { """{"kind":"api","name":"x","settings":{"trustedIdentityKinds":["telegram"]}}""", "settings.trustedIdentityKinds" },
        { """{"kind":"api","name":"x","settings":{"trustedIdentityKinds":["fax"]}}""", "settings.trustedIdentityKinds[0]" },
        { """{"kind":"api","name":"x","settings":{"webhookURI":"https://example.com"}}""", "settings.webhookURI" },
        { """{"kind":"email","name":"x"}""", "settings.address" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task Invalid_settings_are_refused_naming_the_field(string body, string field)
    {
        using var admin = App.Admin();

        var response = await admin.PutAsync("/api/v1/admin/channels/typed", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal(field, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/admin/channels/typed")).StatusCode);
    }

    [Fact]
    public async Task The_legacy_shape_with_a_top_level_webhook_url_is_kept_as_the_typed_setting()
    {
        using var admin = App.Admin();

        var legacy = await admin.PutAsJsonAsync("/api/v1/admin/channels/legacy", new { kind = "api", name = "Old client", webhookUrl = "https://example.com/hook", secret = "legacy-secret-0123456789" });
        var typed = await admin.PutAsJsonAsync("/api/v1/admin/channels/typed", new { kind = "api", name = "New client", enabled = true, settings = new { webhookUrl = "https://example.com/typed", trustedIdentityKinds = new[] { "email" } } });
        var view = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/legacy");
        var typedView = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/typed");

        legacy.EnsureSuccessStatusCode();
        typed.EnsureSuccessStatusCode();
        Assert.DoesNotContain("legacy-secret-0123456789", await legacy.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("https://example.com/hook", view.GetProperty("settings").GetProperty("webhookUrl").GetString());
        Assert.Equal("https://example.com/hook", view.GetProperty("webhookUrl").GetString());
        Assert.Equal("email", typedView.GetProperty("settings").GetProperty("trustedIdentityKinds")[0].GetString());
        Assert.Equal(HttpStatusCode.Accepted, (await App.PostMessageAsync(Message("l-1"), "legacy", "legacy-secret-0123456789")).StatusCode);
    }

    [Fact]
    public async Task Health_reported_by_a_connector_shows_in_the_admin_view()
    {
        var health = App.Services.GetRequiredService<IChannelHealth>();
        using var admin = App.Admin();

        await health.ReportSuccessAsync("bridge");
        await health.ReportErrorAsync("bridge", "Webhook answered 503 Service Unavailable: upstream down");
        await health.ReportErrorAsync("no-such-channel", "ignored");
        var view = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/bridge");

        Assert.Equal("Webhook answered 503 Service Unavailable: upstream down", view.GetProperty("lastError").GetString());
        Assert.Equal(JsonValueKind.String, view.GetProperty("lastErrorAt").ValueKind);
        Assert.Equal(JsonValueKind.String, view.GetProperty("lastSuccessAt").ValueKind);
        Assert.Equal(1, await App.QueryAsync(db => db.ChannelAccounts.CountAsync(c => c.LastError != null)));
    }
}
