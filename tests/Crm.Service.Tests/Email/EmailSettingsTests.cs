using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Email;
using Crm.Service.Contracts;
using Crm.Service.Grains.Storage;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Email;

/// <summary>The email kind's settings through the admin API: validation naming fields, passwords encrypted and never returned.</summary>
public sealed class EmailSettingsTests : AppTest
{
    private static object MailboxSettings(string? address = "support@example.com", string security = "ssl", string afterProcessing = "seen", string? imapPassword = "imap-secret-1", string? smtpPassword = "smtp-secret-1") => new
    {
        address,
        displayName = "Example Support",
        imap = new { host = "imap.example.com", port = 993, security, user = "support", password = imapPassword, afterProcessing },
        smtp = new { host = "smtp.example.com", port = 587, security = "starttls", user = "support", password = smtpPassword },
    };

    private async Task<HttpResponseMessage> PutAsync(object settings, bool enabled = false)
    {
        using var admin = App.Admin();
        // Disabled: no reader tries to reach the made-up servers.
        return await admin.PutAsJsonAsync("/api/v1/admin/channels/mailbox", new { kind = "email", name = "Mailbox", enabled, settings });
    }

    [Fact]
    public async Task Passwords_are_encrypted_at_rest_never_returned_and_kept_when_a_put_leaves_them_out()
    {
        var created = await PutAsync(MailboxSettings());
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var answer = await created.Content.ReadAsStringAsync();
        using var admin = App.Admin();
        var got = await admin.GetStringAsync("/api/v1/admin/channels/mailbox");

        foreach (var text in new[] { answer, got })
        {
            Assert.DoesNotContain("imap-secret-1", text, StringComparison.Ordinal);
            Assert.DoesNotContain("smtp-secret-1", text, StringComparison.Ordinal);
        }
        var view = JsonDocument.Parse(got).RootElement;
        Assert.Equal(["imap.password", "smtp.password"], view.GetProperty("secretSettings").EnumerateArray().Select(e => e.GetString()).Order());
        Assert.False(view.GetProperty("settings").GetProperty("imap").TryGetProperty("password", out _));
        Assert.Equal("starttls", view.GetProperty("settings").GetProperty("smtp").GetProperty("security").GetString());
        var stored = await App.QueryAsync(db => db.ChannelAccounts.AsNoTracking().SingleAsync(c => c.Id == "mailbox"));
        Assert.All(stored.SecretSettings.Values, v => Assert.StartsWith(ProtectedSecrets.Marker, v, StringComparison.Ordinal));
        Assert.DoesNotContain("secret-1", stored.Settings, StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.OK, (await PutAsync(MailboxSettings(imapPassword: null, smtpPassword: "smtp-secret-2"))).StatusCode);
        var account = App.Services.GetRequiredService<IChannelAccounts>().Find("mailbox")!.SettingsAs<EmailChannelSettings>()!;
        Assert.Equal("imap-secret-1", account.Imap!.Password);
        Assert.Equal("smtp-secret-2", account.Smtp!.Password);
    }

    [Theory]
    [InlineData(null, "ssl", "seen", "settings.address")]
    [InlineData("not an address", "ssl", "seen", "settings.address")]
    [InlineData("support@example.com", "ssl", "delete", "settings.imap.afterProcessing")]
    [InlineData("support@example.com", "ssl", "move:INBOX", "settings.imap.afterProcessing")]
    [InlineData("support@example.com", "tls13", "seen", "settings.imap.security")]
    public async Task Invalid_settings_are_refused_naming_the_field(string? address, string security, string afterProcessing, string field)
    {
        var response = await PutAsync(MailboxSettings(address, security, afterProcessing));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal(field, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
    }

    [Fact]
    public async Task A_move_target_is_accepted()
    {
        Assert.Equal(HttpStatusCode.OK, (await PutAsync(MailboxSettings(afterProcessing: "move:Processed"))).StatusCode);
        var account = App.Services.GetRequiredService<IChannelAccounts>().Find("mailbox")!;
        Assert.Equal(ChannelKind.Email, account.Kind);
        Assert.Equal("Processed", account.SettingsAs<EmailChannelSettings>()!.Imap!.MoveTo);
    }
}
