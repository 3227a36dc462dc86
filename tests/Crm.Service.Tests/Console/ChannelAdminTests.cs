using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Email;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Crm.Service.Tests.Console;

/// <summary>admin17, issue 17 ("channel accounts of every kind"): /Admin/Channels/Edit creates and edits channel
/// accounts through the handler of <c>PUT /api/v1/admin/channels/{id}</c>; secrets are write-only; an issued signing
/// secret is shown once; admins only.</summary>
public sealed partial class ChannelAdminTests : AppTest
{
    private const string Admin = "admin@example.com";
    private const string ImapPassword = "imap-secret-0001";

    private async Task<JsonElement> ChannelAsync(string id)
    {
        using var admin = App.Admin();
        return await admin.GetFromJsonAsync<JsonElement>($"/api/v1/admin/channels/{id}");
    }

    private async Task CreateEmailAsync()
    {
        using var admin = App.Admin();
        var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new
        {
            kind = "email", name = "Support", enabled = false,
            settings = new
            {
                address = "support@example.com",
                imap = new { host = "imap.example.com", user = "support", password = ImapPassword },
                smtp = new { host = "smtp.example.com", user = "support", password = "smtp-secret-0001" },
            },
        });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    private EmailChannelSettings? StoredEmail() =>
        App.Services.GetRequiredService<IChannelAccounts>().Find("support")?.SettingsAs<EmailChannelSettings>();

    private static string Field(string page, string name) =>
        WebUtility.HtmlDecode(Regex.Match(page, $"name=\"{Regex.Escape(name)}\"[^>]*>([^<]*)</textarea>|name=\"{Regex.Escape(name)}\"[^>]*value=\"([^\"]*)\"") is { Success: true } m
            ? m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value : "");

    [GeneratedRegex("id=\"issued-secret\" readonly value=\"([^\"]+)\"")]
    private static partial Regex IssuedSecret();

    [Fact]
    public async Task An_admin_creates_an_api_channel_sees_its_secret_once_and_rotates_it()
    {
        using var admin = await ConsoleBrowser.SignedInAsync(App, Admin, ConsoleRoles.Admin);
        var list = await admin.PageAsync("/Admin/Channels");
        Assert.Contains("href=\"/Admin/Channels/Edit?kind=api\"", list, StringComparison.Ordinal);

        var created = await admin.SubmitAsync("/Admin/Channels/Edit?kind=api", new()
        {
            ["Id"] = "shop-bridge", ["Kind"] = "Api", ["Name"] = "Shop bridge", ["Enabled"] = "true",
            ["SettingsJson"] = """{ "webhookUrl": "https://hooks.example/crm" }""",
        });

        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        Assert.True(created.Headers.CacheControl?.NoStore, "not cached");
        var first = IssuedSecret().Match(await created.Content.ReadAsStringAsync()).Groups[1].Value;
        Assert.True(first.Length >= 16, "the generated secret is shown");
        var channel = await ChannelAsync("shop-bridge");
        Assert.Equal("Shop bridge", channel.GetProperty("name").GetString());
        Assert.Equal("https://hooks.example/crm", channel.GetProperty("settings").GetProperty("webhookUrl").GetString());
        Assert.True(channel.GetProperty("hasSecret").GetBoolean());
        // Never again: the page of the account does not hold it.
        var page = await admin.PageAsync("/Admin/Channels/Edit/shop-bridge");
        Assert.DoesNotContain(first, page, StringComparison.Ordinal);
        Assert.Contains("href=\"/Admin/Channels/Edit/shop-bridge\"", await admin.PageAsync("/Admin/Channels"), StringComparison.Ordinal);

        var rotated = await admin.SubmitAsync("/Admin/Channels/Edit/shop-bridge", [], "/Admin/Channels/Edit/shop-bridge?handler=Rotate");
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        var second = IssuedSecret().Match(await rotated.Content.ReadAsStringAsync()).Groups[1].Value;
        Assert.True(second.Length >= 16 && second != first, "a new secret is shown");
        Assert.DoesNotContain(second, await admin.PageAsync("/Admin/Channels/Edit/shop-bridge"), StringComparison.Ordinal);

        // Name and enabled are edited on the page; a second create of the same id is refused at the id.
        page = await admin.PageAsync("/Admin/Channels/Edit/shop-bridge");
        var saved = await admin.SubmitAsync("/Admin/Channels/Edit/shop-bridge", new()
        {
            ["Name"] = "Shop bridge (paused)", ["Enabled"] = "false", ["SettingsJson"] = Field(page, "SettingsJson"), ["Version"] = Field(page, "Version"),
        });
        Assert.Equal(HttpStatusCode.Redirect, saved.StatusCode);
        channel = await ChannelAsync("shop-bridge");
        Assert.Equal("Shop bridge (paused)", channel.GetProperty("name").GetString());
        Assert.False(channel.GetProperty("enabled").GetBoolean());
        Assert.Equal("https://hooks.example/crm", channel.GetProperty("settings").GetProperty("webhookUrl").GetString());
        var again = await admin.SubmitAsync("/Admin/Channels/Edit?kind=api", new() { ["Id"] = "shop-bridge", ["Kind"] = "Api", ["Name"] = "x", ["SettingsJson"] = "{}" });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, again.StatusCode);
        Assert.Contains("data-valmsg-for=\"Id\"", await again.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("Shop bridge (paused)", (await ChannelAsync("shop-bridge")).GetProperty("name").GetString());
    }

    [Fact]
    public async Task An_email_accounts_password_is_write_only_and_an_empty_field_keeps_it()
    {
        await CreateEmailAsync();
        using var admin = await ConsoleBrowser.SignedInAsync(App, Admin, ConsoleRoles.Admin);
        var page = await admin.PageAsync("/Admin/Channels/Edit/support");
        Assert.DoesNotContain(ImapPassword, page, StringComparison.Ordinal);
        Assert.Contains("id=\"secret-imap-password\"", page, StringComparison.Ordinal);
        var settings = Field(page, "SettingsJson");
        Assert.Contains("imap.example.com", settings, StringComparison.Ordinal);

        var saved = await admin.SubmitAsync("/Admin/Channels/Edit/support", new()
        {
            ["Name"] = "Support desk", ["Enabled"] = "false", ["Version"] = Field(page, "Version"),
            ["SettingsJson"] = settings.Replace("\"support@example.com\"", "\"help@example.com\"", StringComparison.Ordinal),
            ["SecretValues[0]"] = "", ["SecretValues[1]"] = "",
        });

        Assert.Equal(HttpStatusCode.Redirect, saved.StatusCode);
        await Eventually.WaitForAsync(() => Task.FromResult(StoredEmail()), s => s?.Address == "help@example.com", TimeSpan.FromSeconds(30), "the new address seen");
        Assert.Equal(ImapPassword, StoredEmail()!.Imap!.Password);
        Assert.Equal("smtp-secret-0001", StoredEmail()!.Smtp!.Password);
        Assert.Equal("Support desk", (await ChannelAsync("support")).GetProperty("name").GetString());

        // A typed password replaces the stored one (the secrets are in the settings type's order: imap, then smtp).
        page = await admin.PageAsync("/Admin/Channels/Edit/support");
        var replaced = await admin.SubmitAsync("/Admin/Channels/Edit/support", new()
        {
            ["Name"] = "Support desk", ["Enabled"] = "false", ["Version"] = Field(page, "Version"),
            ["SettingsJson"] = Field(page, "SettingsJson"), ["SecretValues[0]"] = "", ["SecretValues[1]"] = "smtp-secret-0002",
        });
        Assert.Equal(HttpStatusCode.Redirect, replaced.StatusCode);
        await Eventually.WaitForAsync(() => Task.FromResult(StoredEmail()), s => s?.Smtp?.Password == "smtp-secret-0002", TimeSpan.FromSeconds(30), "the new password seen");
        Assert.Equal(ImapPassword, StoredEmail()!.Imap!.Password);
    }

    [Fact]
    public async Task Refusals_of_the_handler_show_at_their_fields_and_nothing_is_saved()
    {
        await CreateEmailAsync();
        using var admin = await ConsoleBrowser.SignedInAsync(App, Admin, ConsoleRoles.Admin);
        var page = await admin.PageAsync("/Admin/Channels/Edit/support");

        var badPort = await admin.SubmitAsync("/Admin/Channels/Edit/support", new()
        {
            ["Name"] = "Broken", ["Enabled"] = "false", ["Version"] = Field(page, "Version"),
            ["SettingsJson"] = Field(page, "SettingsJson").Replace("\"port\": 993", "\"port\": 0", StringComparison.Ordinal),
        });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badPort.StatusCode);
        // The API's own sentence, at the settings field.
        Assert.Matches("data-valmsg-for=\"SettingsJson\"[^>]*>imap.port must be between 1 and 65535", await badPort.Content.ReadAsStringAsync());

        var badJson = await admin.SubmitAsync("/Admin/Channels/Edit/support", new()
        {
            ["Name"] = "Broken", ["Enabled"] = "false", ["Version"] = Field(page, "Version"), ["SettingsJson"] = "{ not json",
        });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badJson.StatusCode);
        Assert.Contains("data-valmsg-for=\"SettingsJson\"", await badJson.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // A Telegram token of the wrong shape: at the token's own (write-only) field, and not echoed back.
        var telegram = await admin.SubmitAsync("/Admin/Channels/Edit?kind=telegram", new()
        {
            ["Id"] = "bot", ["Kind"] = "Telegram", ["Name"] = "Bot", ["Enabled"] = "false", ["SettingsJson"] = "{}", ["SecretValues[0]"] = "not-a-token",
        });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, telegram.StatusCode);
        var html = await telegram.Content.ReadAsStringAsync();
        Assert.Matches("data-valmsg-for=\"SecretValues\\[0\\]\"[^>]*>token is not a bot token", html);
        Assert.DoesNotContain("value=\"not-a-token\"", html, StringComparison.Ordinal);

        Assert.Equal("Support", (await ChannelAsync("support")).GetProperty("name").GetString());
        using var api = App.Admin();
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync("/api/v1/admin/channels/bot")).StatusCode);
    }

    [Fact]
    public async Task Agents_and_supervisors_get_403_and_a_post_needs_its_token()
    {
        await CreateEmailAsync();
        using var admin = await ConsoleBrowser.SignedInAsync(App, Admin, ConsoleRoles.Admin);
        var page = await admin.PageAsync("/Admin/Channels/Edit/support");
        var form = new Dictionary<string, string>
        {
            ["Name"] = "Taken over", ["Enabled"] = "false", ["Version"] = Field(page, "Version"), ["SettingsJson"] = Field(page, "SettingsJson"),
        };
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent, ConsoleRoles.Supervisor);

        foreach (var path in new[] { "/Admin/Channels", "/Admin/Channels/Edit/support", "/Admin/Channels/Edit?kind=api" })
        {
            var refused = await agent.GetAsync(path);
            Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
            var denied = refused.Headers.Location!.OriginalString;
            Assert.Contains("/Account/AccessDenied", denied, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.Forbidden, (await agent.GetAsync(denied)).StatusCode);
        }
        var posted = await agent.SubmitAsync("/Queues", new(form), "/Admin/Channels/Edit/support");
        Assert.Contains("/Account/AccessDenied", posted.Headers.Location!.OriginalString, StringComparison.Ordinal);
        var rotate = await agent.SubmitAsync("/Queues", [], "/Admin/Channels/Edit/support?handler=Rotate");
        Assert.Contains("/Account/AccessDenied", rotate.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostWithoutTokenAsync("/Admin/Channels/Edit/support", new(form))).StatusCode);
        Assert.Equal("Support", (await ChannelAsync("support")).GetProperty("name").GetString());
    }
}

/// <summary>The channel pages in chromium: an admin creates an API channel, copies its secret from the one page that
/// shows it, and renames an email account without retyping its password.</summary>
public sealed class ChannelAdminBrowserTests : BrowserTest
{
    private const string Admin = "admin@example.com";
    protected override async Task SetUpAsync()
    {
        using (var admin = App.Admin())
        {
            var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new
            {
                kind = "email", name = "Support", enabled = false,
                settings = new { address = "support@example.com", imap = new { host = "imap.example.com", user = "support", password = "imap-secret-0001" }, smtp = new { host = "smtp.example.com" } },
            });
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }
        await ConsoleBrowser.CreateUserAsync(App, Admin, ConsoleRoles.Admin);
    }

    [Fact]
    public async Task An_admin_creates_an_api_channel_and_renames_an_email_account_in_the_browser()
    {
        var page = await SignedInPageAsync(Admin, "/Account/Login");

        await page.GotoAsync(BaseUrl + "/Admin/Channels");
        await page.GetByRole(AriaRole.Link, new() { Name = "New api" }).ClickAsync();
        await page.ArrivedAtAsync(new Regex("/Admin/Channels/Edit\\?kind=api"), "#channel-form");
        await page.GetByLabel("Id (lower-case letters, digits and '-')").FillAsync("shop");
        await page.GetByLabel("Name").FillAsync("Shop bridge");
        await page.Locator("#SettingsJson").FillAsync("""{ "webhookUrl": "https://hooks.example/crm" }""");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create" }).ClickAsync();
        var secret = page.Locator("#issued-secret");
        await Assertions.Expect(secret).ToHaveValueAsync(new Regex("^.{16,}$"));
        var issued = await secret.InputValueAsync();

        await page.GetByRole(AriaRole.Button, new() { Name = "Rotate the signing secret" }).ClickAsync();
        await Assertions.Expect(page.Locator("#issued-secret")).Not.ToHaveValueAsync(issued);
        await Assertions.Expect(page.Locator("#issued-secret")).ToHaveValueAsync(new Regex("^.{16,}$"));

        await page.GotoAsync(BaseUrl + "/Admin/Channels");
        await page.GetByRole(AriaRole.Link, new() { Name = "Edit support" }).ClickAsync();
        await page.ArrivedAtAsync(new Regex("/Admin/Channels/Edit/support"), "#channel-form");
        await Assertions.Expect(page.Locator("#secret-imap-password")).ToHaveValueAsync("");
        await page.GetByLabel("Name").FillAsync("Support desk");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Assertions.Expect(page.Locator("#channel-saved")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("h1")).ToContainTextAsync("Support desk");
        await Eventually.WaitForAsync(() => Task.FromResult(App.Services.GetRequiredService<IChannelAccounts>().Find("support")?.SettingsAs<EmailChannelSettings>()),
            s => s?.Imap?.Password == "imap-secret-0001" && App.Services.GetRequiredService<IChannelAccounts>().Find("support")?.Name == "Support desk",
            TimeSpan.FromSeconds(30), "the rename seen with the password kept");
    }
}
