using System.Net;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Support;

/// <summary>A cookie-keeping HTTP client over HTTPS (so Secure cookies flow) that reads anti-forgery tokens from forms,
/// like a browser without JavaScript.</summary>
internal sealed partial class ConsoleBrowser : IDisposable
{
    public const string Password = "correct horse battery staple";

    private ConsoleBrowser(HttpClient client) => Client = client;

    public HttpClient Client { get; }

    /// <summary>"crm.console=…" after <see cref="SignedInAsync"/>, for clients that keep no cookies (the SignalR client).</summary>
    public string? SessionCookie { get; private set; }

    /// <param name="baseAddress">An app on Kestrel (a browser test) is reached at its real address.</param>
    public static ConsoleBrowser Open(CrmApp app, Uri? baseAddress = null) => new(app.CreateClient(new WebApplicationFactoryClientOptions
    {
        AllowAutoRedirect = false,
        HandleCookies = true,
        BaseAddress = baseAddress ?? new Uri("https://localhost"),
    }));

    public static Task<ConsoleBrowser> SignedInAsync(CrmApp app, string email, params string[] roles) => SignedInAsync(app, null, email, roles);

    public static async Task<ConsoleBrowser> SignedInAsync(CrmApp app, Uri? baseAddress, string email, params string[] roles)
    {
        await CreateUserAsync(app, email, roles);
        var browser = Open(app, baseAddress);
        var response = await browser.SubmitAsync("/Account/Login", new() { ["Email"] = email, ["Password"] = Password });
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        browser.SessionCookie = response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("crm.console=", StringComparison.Ordinal)).Split(';')[0];
        return browser;
    }

    /// <summary>The session cookie of <paramref name="email"/> (a user made by <see cref="CreateUserAsync"/>) signed in
    /// over plain http to an app on Kestrel. The console's cookies are Secure, so a cookie container would not send
    /// them back over http; the cookies are carried by hand here, as a browser would over https.</summary>
    public static async Task<string> SessionCookieOverHttpAsync(Uri server, string email)
    {
        using var client = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = server };
        var form = await client.GetAsync("/Account/Login");
        var cookies = string.Join("; ", form.Headers.GetValues("Set-Cookie").Select(c => c.Split(';')[0]));
        var token = TokenPattern().Match(await form.Content.ReadAsStringAsync());
        Assert.True(token.Success, "No anti-forgery token on the sign-in page.");
        using var post = new HttpRequestMessage(HttpMethod.Post, "/Account/Login")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["Email"] = email,
                ["Password"] = Password,
                ["__RequestVerificationToken"] = WebUtility.HtmlDecode(token.Groups[1].Value),
            }),
        };
        post.Headers.Add("Cookie", cookies);
        var signedIn = await client.SendAsync(post);
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        return signedIn.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("crm.console=", StringComparison.Ordinal)).Split(';')[0];
    }

    /// <summary>An API client with a personal agent key this signed-in person makes on their Profile (the key carries
    /// the person's limits).</summary>
    public async Task<HttpClient> PersonalKeyAsync(CrmApp app)
    {
        var created = await SubmitAsync("/Profile", new() { ["KeyLabel"] = "script", ["KeyRole"] = "agent" }, "/Profile?handler=CreateKey");
        var key = Regex.Match(await created.Content.ReadAsStringAsync(), "<code id=\"created-key\">([^<]+)</code>").Groups[1].Value;
        Assert.StartsWith("crm_", key, StringComparison.Ordinal);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    /// <summary>A SignalR client on the agents' hub as this signed-in person (long polling through the test server).</summary>
    public HubConnection AgentHub(CrmApp app)
    {
        var server = app.Server;
        var cookie = SessionCookie ?? throw new InvalidOperationException("Sign in first (SignedInAsync).");
        return new HubConnectionBuilder()
            .WithUrl(new Uri(server.BaseAddress, "/hubs/agents"), options =>
            {
                options.HttpMessageHandlerFactory = _ => server.CreateHandler();
                options.Transports = HttpTransportType.LongPolling;
                options.Headers["Cookie"] = cookie;
            })
            .Build();
    }

    public static async Task CreateUserAsync(CrmApp app, string email, params string[] roles)
    {
        using var scope = app.Services.CreateScope();
        await FirstAdminSetupRoles(scope.ServiceProvider);
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        var user = new IdentityUser { UserName = email, Email = email, EmailConfirmed = true };
        var created = await users.CreateAsync(user, Password);
        Assert.True(created.Succeeded, string.Join(" ", created.Errors.Select(e => e.Description)));
        if (roles.Length > 0)
            Assert.True((await users.AddToRolesAsync(user, roles)).Succeeded);
    }

    private static async Task FirstAdminSetupRoles(IServiceProvider services)
    {
        var roles = services.GetRequiredService<RoleManager<IdentityRole>>();
        foreach (var role in ConsoleRoles.All)
            if (!await roles.RoleExistsAsync(role))
                await roles.CreateAsync(new IdentityRole(role));
    }

    public Task<HttpResponseMessage> GetAsync(string path) => Client.GetAsync(path);

    public async Task<string> PageAsync(string path)
    {
        var response = await Client.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>Loads <paramref name="formPage"/>, takes the anti-forgery token of its forms and posts the fields to
    /// <paramref name="action"/> (default: the page itself).</summary>
    public async Task<HttpResponseMessage> SubmitAsync(string formPage, Dictionary<string, string> fields, string? action = null)
    {
        var html = await PageAsync(formPage);
        var token = TokenPattern().Match(html);
        Assert.True(token.Success, $"No anti-forgery token on {formPage}.");
        fields["__RequestVerificationToken"] = WebUtility.HtmlDecode(token.Groups[1].Value);
        return await Client.PostAsync(action ?? formPage, new FormUrlEncodedContent(fields));
    }

    public Task<HttpResponseMessage> PostWithoutTokenAsync(string action, Dictionary<string, string> fields) =>
        Client.PostAsync(action, new FormUrlEncodedContent(fields));

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex TokenPattern();

    public void Dispose() => Client.Dispose();
}
