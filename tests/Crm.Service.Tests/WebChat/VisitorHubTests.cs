using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Connectors.WebChat;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.WebChat;

/// <summary>The visitors' hub with the SignalR .NET client against the whole service: start, send, an agent's reply
/// through the REST API pushed live, reconnect and resend, someone else's conversation, wrong origins and floods.</summary>
public sealed class VisitorHubTests
{
    private static async Task<HubConnection> ConnectedAsync(WebChatRig rig, SessionResponse session)
    {
        var hub = rig.Visitor(session.Token);
        await hub.StartAsync();
        return hub;
    }

    [Fact]
    public async Task A_visitor_starts_sends_and_receives_the_agents_reply_live_and_in_the_history()
    {
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();
        Assert.True(session.NewVisitor);
        await using var hub = await ConnectedAsync(rig, session);
        var replies = new TaskCompletionSource<ChatLine>(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.On<ChatLine>("Message", line => { if (line.From == "agent") replies.TrySetResult(line); });

        var ack = await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Where is my order #4711?");

        // Acknowledged means stored: the message is in the store on the visitor's conversation, as a WebChat identity.
        var stored = await rig.App.QueryAsync(db => db.Messages.SingleAsync(m => m.Id == ack.MessageId));
        Assert.False(ack.Duplicate);
        Assert.Equal("Where is my order #4711?", stored.Text);
        Assert.Equal(WebChatRig.Widget, stored.ChannelAccountId);
        var conversation = await rig.App.QueryAsync(db => db.Conversations.SingleAsync(c => c.Id == stored.ConversationId));
        Assert.Equal(session.ConversationId, conversation.ThreadKey);
        Assert.StartsWith("webchat:shop/", conversation.CustomerIdentity, StringComparison.Ordinal);

        using var agent = await rig.App.AgentAsync();
        var ticket = await rig.TicketOfAsync(ack.MessageId);
        await rig.AgentReplyAsync(agent, ticket, "It ships today.");
        var reply = await replies.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("It ships today.", reply.Text);

        var history = await hub.InvokeAsync<ChatHistory>("History", session.ConversationId);
        Assert.Equal(["visitor:Where is my order #4711?", "agent:It ships today."], history.Lines.Select(l => $"{l.From}:{l.Text}"));
        Assert.Equal("c-1", history.Lines[0].ClientMessageId);
        // The outbox recorded the push as sent.
        await Eventually.WaitForAsync(() => rig.App.QueryAsync(db => db.Messages.Where(m => m.Id == reply.Id).Select(m => m.Delivery).SingleAsync()),
            d => d == DeliveryStatus.Sent, what: "the reply marked sent");
    }

    [Fact]
    public async Task A_returning_visitor_reconnects_resends_without_a_duplicate_and_sees_the_history()
    {
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();
        SendAck first;
        await using (var hub = await ConnectedAsync(rig, session))
            first = await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Hello?");

        // The widget lost the acknowledgement and resends on a new connection, with a renewed token.
        var again = await rig.StartSessionAsync(session.Token);
        Assert.False(again.NewVisitor);
        Assert.Equal(session.ConversationId, again.ConversationId);
        await using var second = await ConnectedAsync(rig, again);
        var resent = await second.InvokeAsync<SendAck>("Send", again.ConversationId, "c-1", "Hello?");
        var next = await second.InvokeAsync<SendAck>("Send", again.ConversationId, "c-2", "Anyone there?");

        Assert.True(resent.Duplicate);
        Assert.Equal(first.MessageId, resent.MessageId);
        Assert.False(next.Duplicate);
        var history = await second.InvokeAsync<ChatHistory>("History", again.ConversationId);
        Assert.Equal(["Hello?", "Anyone there?"], history.Lines.Select(l => l.Text));
        var conversationId = await rig.App.QueryAsync(db => db.Messages.Where(m => m.Id == first.MessageId).Select(m => m.ConversationId).SingleAsync());
        Assert.Equal(2, await rig.App.QueryAsync(db => db.Messages.CountAsync(m => m.ConversationId == conversationId)));
        Assert.Equal(1, await rig.App.QueryAsync(db => db.Tickets.CountAsync()));
    }

    [Fact]
    public async Task A_visitor_cannot_join_read_or_write_another_conversation()
    {
        await using var rig = await WebChatRig.StartAsync(widgetSettings: new { allowedOrigins = new[] { WebChatRig.Origin } });
        await rig.CreateWidgetAsync("other", new { allowedOrigins = new[] { WebChatRig.Origin } });
        var alice = await rig.StartSessionAsync();
        var mallory = await rig.StartSessionAsync();
        await using var aliceHub = await ConnectedAsync(rig, alice);
        await aliceHub.InvokeAsync<SendAck>("Send", alice.ConversationId, "a-1", "My address is 1 Secret Lane.");
        await using var malloryHub = await ConnectedAsync(rig, mallory);
        var malloryLines = new List<ChatLine>();
        malloryHub.On<ChatLine>("Message", malloryLines.Add);

        var read = await Assert.ThrowsAsync<HubException>(() => malloryHub.InvokeAsync<ChatHistory>("History", alice.ConversationId));
        var write = await Assert.ThrowsAsync<HubException>(() => malloryHub.InvokeAsync<SendAck>("Send", alice.ConversationId, "m-1", "I am Alice"));
        await Assert.ThrowsAsync<HubException>(() => malloryHub.InvokeAsync<IReadOnlyList<ArticleSuggestion>>("Typing", alice.ConversationId, true, "x", "en"));
        Assert.Contains("not yours", read.Message, StringComparison.Ordinal);
        Assert.Contains("not yours", write.Message, StringComparison.Ordinal);

        // Alice's later messages and the agent's reply to her never reach Mallory's connection.
        using var agent = await rig.App.AgentAsync();
        var ack = await aliceHub.InvokeAsync<SendAck>("Send", alice.ConversationId, "a-2", "Second secret");
        await rig.AgentReplyAsync(agent, await rig.TicketOfAsync(ack.MessageId), "Reply for Alice");
        var malloryOwn = await malloryHub.InvokeAsync<ChatHistory>("History", mallory.ConversationId);
        Assert.Empty(malloryOwn.Lines);
        Assert.Empty(malloryLines);

        // A token edited by one character, another widget's token, or none at all: the hub refuses the connection.
        var tampered = alice.Token[..^2] + (alice.Token[^2] == 'A' ? 'B' : 'A') + alice.Token[^1];
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => rig.Visitor(tampered).StartAsync());
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => rig.Visitor(alice.Token, widget: "other").StartAsync());
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => rig.Visitor("").StartAsync());
        // Nor does the session endpoint hand out Alice's conversation for a forged token: it makes a new visitor.
        var forged = await rig.StartSessionAsync(tampered);
        Assert.True(forged.NewVisitor);
        Assert.NotEqual(alice.ConversationId, forged.ConversationId);
    }

    [Fact]
    public async Task Pages_of_other_origins_are_refused_and_allowed_ones_get_cors_for_their_origin_only()
    {
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();

        var hubError = await Assert.ThrowsAnyAsync<HttpRequestException>(() => rig.Visitor(session.Token, origin: "https://evil.example").StartAsync());
        Assert.Equal(HttpStatusCode.Forbidden, hubError.StatusCode);
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => rig.Visitor(session.Token, origin: null).StartAsync());
        using var evil = rig.Page("https://evil.example");
        var evilConfig = await evil.GetAsync("/api/v1/webchat/shop/config");
        var evilSession = await evil.PostAsJsonAsync("/api/v1/webchat/shop/sessions", new { });
        using var noOrigin = rig.Page(null);
        var noOriginConfig = await noOrigin.GetAsync("/api/v1/webchat/shop/config");
        Assert.Equal(HttpStatusCode.Forbidden, evilConfig.StatusCode);
        Assert.Contains("allowedOrigins", await evilConfig.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(evilConfig.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.Equal(HttpStatusCode.Forbidden, evilSession.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, noOriginConfig.StatusCode);

        using var shop = rig.Page();
        var config = await shop.GetAsync("/api/v1/webchat/shop/config");
        Assert.Equal(HttpStatusCode.OK, config.StatusCode);
        Assert.Equal(WebChatRig.Origin, config.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var body = await config.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("Shop help", body.GetProperty("title").GetProperty("en").GetString());
        Assert.False(body.TryGetProperty("allowedOrigins", out _));
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/hubs/visitor/negotiate?widget=shop&negotiateVersion=1");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization, x-signalr-user-agent, x-evil");
        var answer = await shop.SendAsync(preflight);
        Assert.Equal(HttpStatusCode.NoContent, answer.StatusCode);
        Assert.Equal("authorization, x-signalr-user-agent", answer.Headers.GetValues("Access-Control-Allow-Headers").Single());
        Assert.False(answer.Headers.Contains("Access-Control-Allow-Credentials"));
        using var unknown = rig.Page();
        Assert.Equal(HttpStatusCode.NotFound, (await unknown.GetAsync("/api/v1/webchat/nope/config")).StatusCode);
    }

    [Fact]
    public async Task A_visitor_who_floods_is_told_to_wait_and_nothing_beyond_the_budget_is_stored()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:MessageBurstPerVisitor"] = "3",
            ["Channels:WebChat:MessagesPerMinutePerVisitor"] = "1",
        });
        var session = await rig.StartSessionAsync();
        await using var hub = await ConnectedAsync(rig, session);
        for (var i = 0; i < 3; i++)
            await hub.InvokeAsync<SendAck>("Send", session.ConversationId, $"c-{i}", $"message {i}");
        var refused = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-3", "one too many"));

        Assert.Contains("too quickly", refused.Message, StringComparison.Ordinal);
        Assert.Contains("seconds", refused.Message, StringComparison.Ordinal);
        Assert.Equal(3, await rig.App.QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == WebChatRig.Widget)));
    }

    [Fact]
    public async Task The_widget_api_refuses_a_flood_from_one_address_with_a_readable_message()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?> { ["Channels:WebChat:RequestsPerMinutePerAddress"] = "1" });
        using var shop = rig.Page();
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage last = null!;
        for (var i = 0; i < 12; i++)
        {
            last = await shop.GetAsync("/api/v1/webchat/shop/config");
            statuses.Add(last.StatusCode);
        }

        Assert.Equal(10, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(HttpStatusCode.TooManyRequests, last.StatusCode);
        Assert.Contains("wait", await last.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.True(last.Headers.Contains("Retry-After"));
        Assert.Equal(WebChatRig.Origin, last.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Fact]
    public async Task Typing_and_read_receipts_go_both_ways_without_store_writes()
    {
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();
        await using var hub = await ConnectedAsync(rig, session);
        var typing = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var read = new TaskCompletionSource<Guid>(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.On<bool>("Typing", t => typing.TrySetResult(t));
        hub.On<Guid>("Read", id => read.TrySetResult(id));
        using var agent = await rig.App.AgentAsync();
        var ack = await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Hi");
        var changesBefore = await rig.App.QueryAsync(db => db.Changes.CountAsync());

        await hub.InvokeAsync<IReadOnlyList<ArticleSuggestion>>("Typing", session.ConversationId, true, "Wher", "en");
        var activity = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/webchat-conversations/shop/{session.ConversationId}/activity");
        Assert.Equal(JsonValueKind.String, activity.GetProperty("visitorTypingUntil").ValueKind);

        var post = await agent.PostAsJsonAsync($"/api/v1/webchat-conversations/shop/{session.ConversationId}/activity", new { typing = true, readUpTo = ack.MessageId });
        Assert.Equal(HttpStatusCode.NoContent, post.StatusCode);
        Assert.True(await typing.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(ack.MessageId, await read.Task.WaitAsync(TimeSpan.FromSeconds(30)));

        await hub.InvokeAsync("MarkRead", session.ConversationId, ack.MessageId);
        activity = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/webchat-conversations/shop/{session.ConversationId}/activity");
        Assert.Equal(ack.MessageId, activity.GetProperty("visitorReadUpTo").GetGuid());
        Assert.Equal(changesBefore, await rig.App.QueryAsync(db => db.Changes.CountAsync()));
        // Visitors cannot use the agents' endpoint.
        using var shop = rig.Page();
        Assert.Equal(HttpStatusCode.Unauthorized, (await shop.PostAsJsonAsync($"/api/v1/webchat-conversations/shop/{session.ConversationId}/activity", new { typing = true })).StatusCode);
    }

    [Fact]
    public async Task Typing_asks_the_article_suggestions_hook_and_returns_at_most_three()
    {
        var fake = new RecordingSuggestions();
        await using var rig = await WebChatRig.StartAsync(services: s => s.AddSingleton<IArticleSuggestions>(fake));
        var session = await rig.StartSessionAsync();
        await using var hub = await ConnectedAsync(rig, session);

        var none = await hub.InvokeAsync<List<ArticleSuggestion>>("Typing", session.ConversationId, true, "ab", "en");
        var found = await hub.InvokeAsync<List<ArticleSuggestion>>("Typing", session.ConversationId, true, "How do I reset my password", "zh");

        Assert.Empty(none);
        Assert.Equal(["a1", "a2", "a3"], found.Select(a => a.Title));
        Assert.Equal([("How do I reset my password", "zh", 3)], fake.Calls);
    }

    [Fact]
    public async Task The_config_says_when_no_agent_of_the_widgets_team_is_online()
    {
        var availability = new FakeAvailability();
        await using var rig = await WebChatRig.StartAsync(services: s => s.AddSingleton<IAgentAvailability>(availability),
            widgetSettings: new { allowedOrigins = new[] { WebChatRig.Origin }, team = "billing" });
        using var shop = rig.Page();

        var online = await shop.GetFromJsonAsync<JsonElement>("/api/v1/webchat/shop/config");
        availability.Online = false;
        var offline = await shop.GetFromJsonAsync<JsonElement>("/api/v1/webchat/shop/config");

        Assert.True(online.GetProperty("agentsOnline").GetBoolean());
        Assert.False(offline.GetProperty("agentsOnline").GetBoolean());
        Assert.Equal(["billing", "billing"], availability.Teams);
    }

    private sealed class RecordingSuggestions : IArticleSuggestions
    {
        public List<(string, string?, int)> Calls { get; } = [];

        public Task<IReadOnlyList<ArticleSuggestion>> SuggestAsync(string question, string? language, int max, CancellationToken cancellationToken = default)
        {
            lock (Calls)
                Calls.Add((question, language, max));
            return Task.FromResult<IReadOnlyList<ArticleSuggestion>>([.. Enumerable.Range(1, 5).Select(i => new ArticleSuggestion($"a{i}", $"https://kb.example/{i}", null))]);
        }
    }

    private sealed class FakeAvailability : IAgentAvailability
    {
        public bool Online { get; set; } = true;

        public List<string?> Teams { get; } = [];

        public Task<bool> AnyAgentOnlineAsync(string? teamId, CancellationToken cancellationToken = default)
        {
            Teams.Add(teamId);
            return Task.FromResult(Online);
        }
    }
}
