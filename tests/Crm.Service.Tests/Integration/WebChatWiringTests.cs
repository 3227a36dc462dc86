using Crm.Connectors.Abstractions;
using Crm.Service.AgentConsole;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
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
        Assert.Equal($"/help/en/articles/{open.GetProperty("slug").GetString()}", only.Url);
        var chinese = await Eventually.WaitForAsync(() => suggestions.SuggestAsync("重置密码", "zh", 3), found => found.Count > 0, what: "the Chinese article indexed");
        Assert.Equal("重置密码", Assert.Single(chinese).Title);
    }
}
