using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>Who may open which console page, sign-in rules, cookies and anti-forgery.</summary>
public sealed class ConsoleAccessTests : AppTest
{
    private const string SetupCode = "setup-code-0123456789abcdef";

    internal override IDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Console:SetupToken"] = SetupCode };

    private async Task<long> ReceiveTicketAsync(string id = "m-1", string name = "Alice")
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = "alice-" + id, name }, subject = "Printer", text = "It is on fire" });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private static void AssertRedirectsTo(HttpResponseMessage response, string path)
    {
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith(path, response.Headers.Location!.OriginalString.Replace("https://localhost", ""), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Root_and_every_page_redirect_to_sign_in_when_nobody_is_signed_in()
    {
        var number = await ReceiveTicketAsync();
        using var browser = ConsoleBrowser.Open(App);

        foreach (var path in new[] { "/", "/Queues", "/Queues/Mine", $"/Tickets/{number}", $"/Customers/{Guid.NewGuid()}", "/Admin" })
            AssertRedirectsTo(await browser.GetAsync(path), "/Account/Login");
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/Account/Login")).StatusCode);
    }

    [Fact]
    public async Task An_agent_cannot_reach_admin_pages()
    {
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);

        AssertRedirectsTo(await agent.GetAsync("/Admin"), "/Account/AccessDenied");
        var post = await agent.SubmitAsync("/Queues", new() { ["Email"] = "mallory@example.com", ["Password"] = ConsoleBrowser.Password, ["Roles"] = ConsoleRoles.Admin }, "/Admin");
        AssertRedirectsTo(post, "/Account/AccessDenied");
        Assert.Equal(HttpStatusCode.OK, (await agent.GetAsync("/Queues")).StatusCode);
        using var scope = App.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<Microsoft.AspNetCore.Identity.IdentityUser>>();
        Assert.Null(await users.FindByEmailAsync("mallory@example.com"));
    }

    [Fact]
    public async Task An_admin_adds_a_person_with_roles()
    {
        using var admin = await ConsoleBrowser.SignedInAsync(App, "admin@example.com", ConsoleRoles.Admin);

        var created = await admin.SubmitAsync("/Admin", new() { ["Email"] = "new@example.com", ["Password"] = ConsoleBrowser.Password, ["Roles"] = ConsoleRoles.Agent });
        var tooShort = await admin.SubmitAsync("/Admin", new() { ["Email"] = "short@example.com", ["Password"] = "short", ["Roles"] = ConsoleRoles.Agent });

        AssertRedirectsTo(created, "/Admin");
        Assert.Contains("new@example.com", await admin.PageAsync("/Admin"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, tooShort.StatusCode);
        Assert.Contains("at least 12 characters", await tooShort.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_knowledge_editor_without_the_agent_role_sees_no_tickets()
    {
        var number = await ReceiveTicketAsync();
        var customer = await App.QueryAsync(db => Task.FromResult(db.Tickets.Single(t => t.Number == number).CustomerId));
        using var editor = await ConsoleBrowser.SignedInAsync(App, "kb@example.com", ConsoleRoles.KnowledgeEditor);

        foreach (var path in new[] { "/Queues", "/Queues/Open", $"/Tickets/{number}", $"/Tickets/{number}?handler=Timeline", $"/Customers/{customer}" })
            AssertRedirectsTo(await editor.GetAsync(path), "/Account/AccessDenied");
        var home = await editor.PageAsync("/");
        Assert.DoesNotContain("Printer", home, StringComparison.Ordinal);
        // The hub is closed to them too.
        var negotiate = await editor.Client.PostAsync("/hubs/agents/negotiate?negotiateVersion=1", null);
        Assert.NotEqual(HttpStatusCode.OK, negotiate.StatusCode);
    }

    [Fact]
    public async Task Forms_without_an_antiforgery_token_are_refused()
    {
        var number = await ReceiveTicketAsync();
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);
        using var anonymous = ConsoleBrowser.Open(App);

        var note = await agent.PostWithoutTokenAsync($"/Tickets/{number}?handler=Note", new() { ["NoteText"] = "forged" });
        var reply = await agent.PostWithoutTokenAsync($"/Tickets/{number}?handler=Reply", new() { ["ReplyText"] = "forged" });
        var signOut = await agent.PostWithoutTokenAsync("/Account/Logout", []);
        var login = await anonymous.PostWithoutTokenAsync("/Account/Login", new() { ["Email"] = "agent@example.com", ["Password"] = ConsoleBrowser.Password });

        Assert.Equal(HttpStatusCode.BadRequest, note.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, reply.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, signOut.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, login.StatusCode);
        Assert.Equal(1, await App.QueryAsync(db => Task.FromResult(db.Messages.Count(m => m.TicketNumber == number))));
    }

    [Fact]
    public async Task The_setup_page_creates_the_first_admin_once_and_then_locks_itself()
    {
        using var browser = ConsoleBrowser.Open(App);
        Assert.Contains("/Setup", await browser.PageAsync("/Account/Login"), StringComparison.Ordinal);

        var wrongCode = await browser.SubmitAsync("/Setup", new() { ["SetupCode"] = "guess", ["Email"] = "root@example.com", ["Password"] = ConsoleBrowser.Password, ["ConfirmPassword"] = ConsoleBrowser.Password });
        var created = await browser.SubmitAsync("/Setup", new() { ["SetupCode"] = SetupCode, ["Email"] = "root@example.com", ["Password"] = ConsoleBrowser.Password, ["ConfirmPassword"] = ConsoleBrowser.Password });

        Assert.Contains("Wrong setup code", await wrongCode.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        AssertRedirectsTo(created, "/");
        // Signed in with every role.
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/Admin")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/Queues")).StatusCode);
        using var late = ConsoleBrowser.Open(App);
        Assert.Equal(HttpStatusCode.NotFound, (await late.GetAsync("/Setup")).StatusCode);
        var second = await late.PostWithoutTokenAsync("/Setup", new() { ["SetupCode"] = SetupCode, ["Email"] = "second@example.com", ["Password"] = ConsoleBrowser.Password, ["ConfirmPassword"] = ConsoleBrowser.Password });
        Assert.NotEqual(HttpStatusCode.Redirect, second.StatusCode);
        var again = await App.Services.GetRequiredService<FirstAdminSetup>().CreateAsync("third@example.com", ConsoleBrowser.Password, CancellationToken.None);
        Assert.False(again.Succeeded);
    }

    [Fact]
    public async Task Sign_in_refuses_an_address_after_repeated_wrong_passwords_with_the_same_answer()
    {
        await ConsoleBrowser.CreateUserAsync(App, "agent@example.com", ConsoleRoles.Agent);
        using var browser = ConsoleBrowser.Open(App);

        for (var i = 0; i < 5; i++)
        {
            var wrong = await browser.SubmitAsync("/Account/Login", new() { ["Email"] = "agent@example.com", ["Password"] = "wrong password " + i });
            Assert.Equal(HttpStatusCode.OK, wrong.StatusCode);
        }
        var right = await browser.SubmitAsync("/Account/Login", new() { ["Email"] = "agent@example.com", ["Password"] = ConsoleBrowser.Password });

        Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        Assert.Contains("Wrong email or password", await right.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.True(App.Services.GetRequiredService<SignInThrottle>().IsBlocked("agent@example.com", "unknown"));
    }

    [Fact]
    public async Task Sign_in_cookies_are_http_only_strict_and_secure_and_sign_out_ends_the_session()
    {
        await ConsoleBrowser.CreateUserAsync(App, "agent@example.com", ConsoleRoles.Agent);
        using var browser = ConsoleBrowser.Open(App);

        var signIn = await browser.SubmitAsync("/Account/Login", new() { ["Email"] = "agent@example.com", ["Password"] = ConsoleBrowser.Password, ["returnUrl"] = "https://evil.example/" });
        var cookie = Assert.Single(signIn.Headers.GetValues("Set-Cookie"), c => c.StartsWith("crm.console=", StringComparison.Ordinal));

        AssertRedirectsTo(signIn, "/");
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("secure", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/Queues")).StatusCode);

        AssertRedirectsTo(await browser.SubmitAsync("/Queues", [], "/Account/Logout"), "/Account/Login");
        AssertRedirectsTo(await browser.GetAsync("/Queues"), "/Account/Login");
    }

    [Fact]
    public async Task The_console_cookie_never_authenticates_the_json_api_and_api_keys_still_do()
    {
        using var admin = await ConsoleBrowser.SignedInAsync(App, "admin@example.com", ConsoleRoles.Admin, ConsoleRoles.Agent);
        using var key = App.Admin();

        Assert.Equal(HttpStatusCode.Unauthorized, (await admin.GetAsync("/api/v1/tickets")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await admin.Client.PostAsJsonAsync("/api/v1/admin/api-keys", new { name = "x", role = "admin" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await key.GetAsync("/api/v1/tickets")).StatusCode);
        // And an API key does not open a page.
        using var keyBrowser = App.CreateClient(new() { AllowAutoRedirect = false });
        keyBrowser.DefaultRequestHeaders.Add("X-Api-Key", CrmApp.AdminKey);
        Assert.Equal(HttpStatusCode.Redirect, (await keyBrowser.GetAsync("/Queues")).StatusCode);
    }

    [Fact]
    public async Task Pages_speak_chinese_to_a_zh_cn_browser_and_english_otherwise()
    {
        using var browser = ConsoleBrowser.Open(App);
        using var chinese = new HttpRequestMessage(HttpMethod.Get, "/Account/Login");
        chinese.Headers.AcceptLanguage.ParseAdd("zh-CN,zh;q=0.9");

        var zh = await (await browser.Client.SendAsync(chinese)).Content.ReadAsStringAsync();
        var en = await browser.PageAsync("/Account/Login");

        Assert.Contains("<html lang=\"zh-CN\">", zh, StringComparison.Ordinal);
        Assert.Contains("登录", zh, StringComparison.Ordinal);
        Assert.Contains("Sign in", en, StringComparison.Ordinal);
        Assert.DoesNotContain("登录", en, StringComparison.Ordinal);
    }
}
