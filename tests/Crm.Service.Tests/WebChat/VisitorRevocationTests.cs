using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.WebChat;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.WebChat;

/// <summary>Review W6: renewal ends the replaced token (after a grace), tokens have a lifetime cap however often they are
/// renewed, and agents can revoke a visitor's tokens or block a visitor, which also closes the open connections.</summary>
public sealed class VisitorRevocationTests
{
    /// <summary>Review WV6: the answer to a <c>newConversation</c> rotation was lost (a page left mid-request). The
    /// replaced token gets its successor again, naming the new conversation, and stays the same visitor (the proven
    /// address and the customer link stay); once the successor is used, the replaced token is a new visitor.</summary>
    [Fact]
    public async Task A_lost_answer_to_a_new_conversation_hands_back_that_conversation_to_the_same_visitor()
    {
        await using var rig = await WebChatRig.StartAsync();
        var first = await rig.StartSessionAsync();
        await using (var hub = rig.Visitor(first.Token))
        {
            await hub.StartAsync();
            await hub.InvokeAsync<SendAck>("Send", first.ConversationId, "c-1", "first conversation");
        }
        var identity = await rig.App.QueryAsync(db => db.Conversations.Where(c => c.ThreadKey == first.ConversationId).Select(c => c.CustomerIdentity).SingleAsync());
        await rig.App.Grains.GetGrain<IWebChatVisitorGrain>(identity["webchat:".Length..]).VerifiedAsync("ann@example.com");

        var lost = await rig.StartSessionAsync(first.Token, newConversation: true);
        var again = await rig.StartSessionAsync(first.Token);

        Assert.NotEqual(first.ConversationId, lost.ConversationId);
        Assert.False(again.NewVisitor);
        Assert.Equal(lost.ConversationId, again.ConversationId);
        await using (var hub = rig.Visitor(again.Token))
        {
            await hub.StartAsync();
            await hub.InvokeAsync<SendAck>("Send", again.ConversationId, "c-2", "second conversation");
        }
        Assert.Equal(identity, await rig.App.QueryAsync(db => db.Conversations.Where(c => c.ThreadKey == again.ConversationId).Select(c => c.CustomerIdentity).SingleAsync()));
        Assert.Equal("ann@example.com", (await rig.App.Grains.GetGrain<IWebChatVisitorGrain>(identity["webchat:".Length..]).GetAsync()).VerifiedEmail);
        // The successor was used: the replaced token recovers nothing any more.
        Assert.True((await rig.StartSessionAsync(first.Token)).NewVisitor);
    }

    /// <summary>Every session call renews (the token is always "due").</summary>
    private static Dictionary<string, string?> Renewing(string recovery = "1.00:00:00") => new()
    {
        ["Channels:WebChat:TokenRenewAfter"] = "00:00:00.001",
        ["Channels:WebChat:TokenRecoveryPeriod"] = recovery,
    };

    [Fact]
    public async Task A_renewed_token_replaces_the_old_one_which_can_neither_connect_nor_mint_a_new_token()
    {
        await using var rig = await WebChatRig.StartAsync(Renewing());
        var t1 = await rig.StartSessionAsync();
        await using (var hub = rig.Visitor(t1.Token))
        {
            await hub.StartAsync();
            await hub.InvokeAsync<SendAck>("Send", t1.ConversationId, "c-1", "My order number is 4711.");
        }

        var t2 = await rig.StartSessionAsync(t1.Token);
        Assert.False(t2.NewVisitor);
        Assert.Equal(t1.ConversationId, t2.ConversationId);
        Assert.NotEqual(t1.Token, t2.Token);

        // The old token is refused by the hub at once (no grace to connect or read).
        var refusal = await RefusalAsync(rig.Visitor(t1.Token));
        Assert.Contains("expired", refusal, StringComparison.Ordinal);

        // The current one reads the conversation; once it was used, the old token cannot even fetch it again: the
        // session endpoint answers it with a new, empty visitor.
        await using (var current = rig.Visitor(t2.Token))
        {
            await current.StartAsync();
            var history = await current.InvokeAsync<ChatHistory>("History", t2.ConversationId);
            Assert.Equal(["My order number is 4711."], history.Lines.Select(l => l.Text));
        }
        var t3 = await rig.StartSessionAsync(t1.Token);
        Assert.True(t3.NewVisitor);
        Assert.NotEqual(t1.ConversationId, t3.ConversationId);
        Assert.Contains("expired", await RefusalAsync(rig.Visitor(t1.Token)), StringComparison.Ordinal);
    }

    /// <summary>Review W1: the answer that carried a renewed token was lost (a page left mid-request, a dropped network).
    /// Ten minutes later the visitor comes back with the old token and gets the successor again: same conversation, no
    /// new rotation, and the old token still cannot connect. Once the successor is used, the old token is refused.</summary>
    [Fact]
    public async Task A_lost_renewal_answer_is_recovered_with_the_old_token_until_the_successor_is_used()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?> { ["Channels:WebChat:TokenRenewAfter"] = "00:05:00" },
            services: s => s.AddFakeGrainClock(clock));
        var t1 = await rig.StartSessionAsync();
        await using (var hub = rig.Visitor(t1.Token))
        {
            await hub.StartAsync();
            await hub.InvokeAsync<SendAck>("Send", t1.ConversationId, "c-1", "My order number is 4711.");
        }
        clock.Advance(TimeSpan.FromMinutes(6));
        _ = await rig.StartSessionAsync(t1.Token); // renewed; the answer is "lost"
        Assert.Contains("expired", await RefusalAsync(rig.Visitor(t1.Token)), StringComparison.Ordinal);

        clock.Advance(TimeSpan.FromMinutes(10));
        var recovered = await rig.StartSessionAsync(t1.Token);
        Assert.False(recovered.NewVisitor);
        Assert.Equal(t1.ConversationId, recovered.ConversationId);
        // Idempotent: asking again answers the successor again (still not used), without rotating further.
        var again = await rig.StartSessionAsync(t1.Token);
        Assert.Equal(t1.ConversationId, again.ConversationId);
        Assert.False(again.NewVisitor);
        // The old token still connects nowhere.
        Assert.Contains("expired", await RefusalAsync(rig.Visitor(t1.Token)), StringComparison.Ordinal);

        // The successor is used: it reads the conversation, and from then on the old token is refused.
        await using (var current = rig.Visitor(recovered.Token))
        {
            await current.StartAsync();
            Assert.Equal(["My order number is 4711."], (await current.InvokeAsync<ChatHistory>("History", recovered.ConversationId)).Lines.Select(l => l.Text));
        }
        var refused = await rig.StartSessionAsync(t1.Token);
        Assert.True(refused.NewVisitor);
        Assert.NotEqual(t1.ConversationId, refused.ConversationId);
        // Both answers carried the same successor generation: the one fetched second works too.
        await using var second = rig.Visitor(again.Token);
        await second.StartAsync();
    }

    /// <summary>Review W1: recovery ends after <see cref="WebChatOptions.TokenRecoveryPeriod"/> even when the successor
    /// was never used.</summary>
    [Fact]
    public async Task A_replaced_token_cannot_recover_after_the_recovery_period()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:TokenRenewAfter"] = "00:05:00",
            ["Channels:WebChat:TokenRecoveryPeriod"] = "1.00:00:00",
        }, services: s => s.AddFakeGrainClock(clock));
        var t1 = await rig.StartSessionAsync();
        clock.Advance(TimeSpan.FromMinutes(6));
        var t2 = await rig.StartSessionAsync(t1.Token);
        Assert.Equal(t1.ConversationId, t2.ConversationId);
        clock.Advance(TimeSpan.FromHours(23));
        Assert.Equal(t1.ConversationId, (await rig.StartSessionAsync(t1.Token)).ConversationId);
        clock.Advance(TimeSpan.FromHours(2));
        Assert.True((await rig.StartSessionAsync(t1.Token)).NewVisitor);
    }

    [Fact]
    public async Task An_agent_revokes_a_visitors_tokens_the_open_connection_closes_and_the_old_token_opens_nothing()
    {
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();
        var hub = rig.Visitor(session.Token);
        await using var _ = hub;
        var closed = Closed(hub);
        await hub.StartAsync();
        await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Here is my address: 1 Secret Lane");

        using var agent = await rig.App.AgentAsync();
        var revoked = await agent.PostAsync($"/api/v1/webchat-conversations/shop/{session.ConversationId}/visitor/revoke", null);
        Assert.True(revoked.IsSuccessStatusCode, await revoked.Content.ReadAsStringAsync());
        Assert.Equal(1, (await revoked.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("generation").GetInt32());

        // The connection opened with the revoked token is closed by the server, wherever it was.
        await closed.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains("expired", await RefusalAsync(rig.Visitor(session.Token)), StringComparison.Ordinal);
        var fresh = await rig.StartSessionAsync(session.Token);
        Assert.True(fresh.NewVisitor);
        Assert.NotEqual(session.ConversationId, fresh.ConversationId);
        await using var newcomer = rig.Visitor(fresh.Token);
        await newcomer.StartAsync();
        Assert.Empty((await newcomer.InvokeAsync<ChatHistory>("History", fresh.ConversationId)).Lines);

        // Only agents may do this.
        using var anonymous = rig.App.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync($"/api/v1/webchat-conversations/shop/{session.ConversationId}/visitor/revoke", null)).StatusCode);
    }

    [Fact]
    public async Task A_blocked_visitor_is_refused_at_the_session_endpoint_at_connect_and_at_send_with_a_clear_message_until_unblocked()
    {
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();
        var hub = rig.Visitor(session.Token);
        await using var _ = hub;
        var closed = Closed(hub);
        await hub.StartAsync();
        await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "spam spam spam");
        using var agent = await rig.App.AgentAsync();
        var blocked = await agent.PutAsJsonAsync($"/api/v1/webchat-conversations/shop/{session.ConversationId}/visitor/block", new { reason = "abusive" });
        Assert.True(blocked.IsSuccessStatusCode, await blocked.Content.ReadAsStringAsync());
        await closed.WaitAsync(TimeSpan.FromSeconds(30));

        // Session endpoint: 403 with the sentence the widget shows (the block reason is never shown to the visitor).
        using var page = rig.Page();
        var refused = await page.PostAsJsonAsync("/api/v1/webchat/shop/sessions", new { token = session.Token });
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        var problem = await refused.Content.ReadAsStringAsync();
        Assert.Contains("not available to you", problem, StringComparison.Ordinal);
        Assert.DoesNotContain("abusive", problem, StringComparison.Ordinal);
        // Connect: refused with the same sentence.
        var atConnect = await RefusalAsync(rig.Visitor(session.Token));
        Assert.Contains("blocked: This chat is not available to you", atConnect, StringComparison.Ordinal);
        // Upload: refused before the body is read.
        using var upload = rig.Page();
        upload.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", session.Token);
        using var form = new MultipartFormDataContent { { new StringContent(session.ConversationId), "conversationId" }, { new StringContent("u-1"), "clientMessageId" } };
        form.Add(new ByteArrayContent("hello"u8.ToArray()) { Headers = { ContentType = new MediaTypeHeaderValue("text/plain") } }, "file", "a.txt");
        Assert.Equal(HttpStatusCode.Forbidden, (await upload.PostAsync("/api/v1/webchat/shop/uploads", form)).StatusCode);

        var standing = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/webchat-conversations/shop/{session.ConversationId}/visitor");
        Assert.True(standing.GetProperty("blocked").GetBoolean());
        Assert.Equal("abusive", standing.GetProperty("blockReason").GetString());

        // Unblocked: the same token works again (a block is not a revoke).
        Assert.True((await agent.DeleteAsync($"/api/v1/webchat-conversations/shop/{session.ConversationId}/visitor/block")).IsSuccessStatusCode);
        var back = await rig.StartSessionAsync(session.Token);
        Assert.Equal(session.ConversationId, back.ConversationId);
        await using var again = rig.Visitor(back.Token);
        await again.StartAsync();
        Assert.False((await again.InvokeAsync<SendAck>("Send", back.ConversationId, "c-2", "sorry")).Duplicate);
    }

    [Fact]
    public async Task A_block_refuses_a_send_on_a_connection_that_is_still_open()
    {
        // The push that closes connections is best effort (a node may miss it); the per-call check is what holds.
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();
        await using var hub = rig.Visitor(session.Token);
        await hub.StartAsync();
        await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "first");
        var visitorKey = await rig.App.QueryAsync(db => db.Conversations.Where(c => c.ThreadKey == session.ConversationId).Select(c => c.CustomerIdentity).SingleAsync());
        // Block through the grain alone, without the push.
        await rig.App.Grains.GetGrain<IWebChatVisitorGrain>(visitorKey["webchat:".Length..]).BlockAsync(true, "test");

        var error = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-2", "second"));
        Assert.Contains("HubException: blocked: This chat is not available to you", error.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<ChatHistory>("History", session.ConversationId));
    }

    [Fact]
    public void Renewals_never_carry_a_token_past_the_lifetime_cap()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
        var tokens = new VisitorTokens(new EphemeralDataProtectionProvider(), Options.Create(new WebChatOptions
        {
            TokenLifetime = TimeSpan.FromDays(30), TokenRenewAfter = TimeSpan.FromDays(1), TokenMaxAge = TimeSpan.FromDays(90),
        }), clock);
        var visitor = tokens.NewVisitor("shop");
        var token = tokens.Issue(visitor);
        // Renewed every 20 days: each token is young, but the visitor's first token is older than the cap at day 100.
        for (var day = 20; day <= 80; day += 20)
        {
            clock.Advance(TimeSpan.FromDays(20));
            visitor = tokens.Read(token, "shop") ?? throw new Xunit.Sdk.XunitException($"refused on day {day}");
            visitor = tokens.Renew(visitor, visitor.Generation + 1);
            token = tokens.Issue(visitor);
        }
        Assert.Equal(4, tokens.Read(token, "shop")!.Generation);
        clock.Advance(TimeSpan.FromDays(9));
        Assert.NotNull(tokens.Read(token, "shop"));
        clock.Advance(TimeSpan.FromDays(2));
        Assert.Null(tokens.Read(token, "shop"));
    }

    private static Task Closed(HubConnection hub)
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.Closed += _ =>
        {
            closed.TrySetResult();
            return Task.CompletedTask;
        };
        return closed.Task;
    }

    /// <summary>The hub refuses in OnConnectedAsync, after the handshake: the start fails, or the connection closes at once with the reason.</summary>
    private static async Task<string> RefusalAsync(HubConnection hub)
    {
        await using var _ = hub;
        var closed = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.Closed += error =>
        {
            closed.TrySetResult(error?.Message ?? "closed without an error");
            return Task.CompletedTask;
        };
        try
        {
            await hub.StartAsync();
        }
        catch (Exception ex)
        {
            return ex.Message;
        }
        return await closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
