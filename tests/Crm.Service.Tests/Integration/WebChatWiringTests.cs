using System.Net;
using System.Net.Http.Json;
using Crm.Connectors.Abstractions;
using Crm.Connectors.WebChat;
using Crm.Service.AgentConsole;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using static Crm.Service.Tests.KnowledgeBase.KbClient;

namespace Crm.Service.Tests.Integration;

/// <summary>The web chat's hooks answered by the console's presence and the knowledge base's search (not their defaults).</summary>
public sealed class WebChatWiringTests : AppTest
{
    [Fact]
    public async Task The_widget_sees_agents_online_only_when_a_member_of_its_team_is_connected_and_online()
    {
        var availability = App.Services.GetRequiredService<IAgentAvailability>();
        var presence = App.Services.GetRequiredService<AgentPresence>();
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("billing", "Billing", restricted: false, ["agent-ann"], CancellationToken.None);

        Assert.False(await availability.AnyAgentOnlineAsync("billing"));
        Assert.False(await availability.AnyAgentOnlineAsync(null));

        presence.Connected("agent-bob", "Bob", "connection-1");
        Assert.True(await availability.AnyAgentOnlineAsync(null));
        Assert.False(await availability.AnyAgentOnlineAsync("billing"));

        presence.Connected("agent-ann", "Ann", "connection-2");
        Assert.True(await availability.AnyAgentOnlineAsync("billing"));

        await presence.SetStatusAsync("agent-ann", "Ann", PresenceStatus.Away, CancellationToken.None);
        Assert.False(await availability.AnyAgentOnlineAsync("billing"));
    }

    [Fact]
    public async Task The_widget_suggests_published_public_articles_in_the_visitors_language_with_their_help_center_link()
    {
        using var editor = await EditorAsync(App);
        var open = await PublishAsync(editor, await CreateAsync(editor, "Reset your password", "Use the reset password link on the sign-in page."));
        await PublishAsync(editor, await CreateAsync(editor, "Password reset for agents", "Internal: reset password of a customer.", visibility: "internal"));
        await CreateAsync(editor, "Password reset draft", "Draft about reset password.");
        await PublishAsync(editor, await CreateAsync(editor, "重置密码", "在登录页面点击重置密码。", "zh-CN"));
        var suggestions = App.Services.GetRequiredService<IArticleSuggestions>();

        var english = await Eventually.WaitForAsync(
            () => suggestions.SuggestAsync("how do I reset my password", "en", 3),
            found => found.Count > 0, what: "the published article indexed");

        var only = Assert.Single(english);
        Assert.Equal("Reset your password", only.Title);
        // A path on the service: the widget resolves it against the origin its script came from (the service's), never
        // against the page it is embedded in.
        Assert.Equal($"/help/en/articles/{open.GetProperty("slug").GetString()}", only.Url);
        var chinese = await Eventually.WaitForAsync(() => suggestions.SuggestAsync("重置密码", "zh", 3), found => found.Count > 0, what: "the Chinese article indexed");
        Assert.Equal("重置密码", Assert.Single(chinese).Title);
    }

    [Fact]
    public async Task A_visitor_typing_a_question_gets_the_article_from_the_hub_as_a_link_that_opens_it_on_the_service()
    {
        using var admin = App.Admin();
        var widget = await admin.PutAsJsonAsync("/api/v1/admin/channels/shop", new { kind = "webchat", name = "Shop", settings = new { allowedOrigins = new[] { "https://shop.example" } } });
        Assert.True(widget.IsSuccessStatusCode, await widget.Content.ReadAsStringAsync());
        using var editor = await EditorAsync(App);
        await PublishAsync(editor, await CreateAsync(editor, "Reset your password", "Use the reset password link on the sign-in page."));
        using var page = App.CreateClient();
        page.DefaultRequestHeaders.Add("Origin", "https://shop.example");
        var session = (await (await page.PostAsJsonAsync("/api/v1/webchat/shop/sessions", new { token = (string?)null })).Content.ReadFromJsonAsync<SessionResponse>(CrmApp.Json))!;
        var server = App.Server;
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(server.BaseAddress, "/hubs/visitor?widget=shop"), options =>
            {
                options.HttpMessageHandlerFactory = _ => server.CreateHandler();
                options.Transports = HttpTransportType.LongPolling;
                options.AccessTokenProvider = () => Task.FromResult<string?>(session.Token);
                options.Headers["Origin"] = "https://shop.example";
            })
            .Build();
        await hub.StartAsync();

        // Typing is budgeted (a search every 2 s after a short burst): ask again until the article is indexed.
        var found = await Eventually.WaitForAsync(
            () => hub.InvokeAsync<List<ArticleSuggestion>>("Typing", session.ConversationId, true, "how do I reset my password", "en"),
            list => list is { Count: > 0 }, what: "the article suggested through the hub");

        var suggestion = Assert.Single(found);
        var link = new Uri(server.BaseAddress, suggestion.Url);
        Assert.Equal(server.BaseAddress.GetLeftPart(UriPartial.Authority), link.GetLeftPart(UriPartial.Authority));
        using var visitor = App.CreateClient();
        var article = await visitor.GetAsync(link);
        Assert.Equal(HttpStatusCode.OK, article.StatusCode);
        Assert.Contains("Use the reset password link on the sign-in page.", await article.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
