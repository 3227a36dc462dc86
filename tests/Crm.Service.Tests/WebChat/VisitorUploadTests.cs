using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Crm.Connectors.WebChat;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.WebChat;

/// <summary>Files from visitors: stored as an attachment of their own conversation, deduplicated like messages, and
/// refused (with the reason) when too large, of a type the widget does not take, disguised, or for someone else.</summary>
public sealed class VisitorUploadTests
{
    private static readonly byte[] Png = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, (byte)'I', (byte)'H', (byte)'D', (byte)'R', 1, 2, 3, 4];

    private static async Task<HttpResponseMessage> UploadAsync(WebChatRig rig, SessionResponse session, byte[] content, string contentType, string fileName = "photo.png",
        string clientMessageId = "u-1", string? conversationId = null, string? token = null)
    {
        using var page = rig.Page();
        page.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token ?? session.Token);
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(content);
        file.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        form.Add(file, "file", fileName);
        form.Add(new StringContent(conversationId ?? session.ConversationId), "conversationId");
        form.Add(new StringContent(clientMessageId), "clientMessageId");
        form.Add(new StringContent("Here is the photo of the damage"), "text");
        return await page.PostAsync("/api/v1/webchat/shop/uploads", form);
    }

    [Fact]
    public async Task A_visitor_sends_a_file_once_even_when_resent_and_it_is_stored_on_their_conversation()
    {
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();

        var first = await UploadAsync(rig, session, Png, "image/png");
        var again = await UploadAsync(rig, session, Png, "image/png");

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var ack = (await first.Content.ReadFromJsonAsync<SendAck>(CrmApp.Json))!;
        var resent = (await again.Content.ReadFromJsonAsync<SendAck>(CrmApp.Json))!;
        Assert.False(ack.Duplicate);
        Assert.True(resent.Duplicate);
        Assert.Equal(ack.MessageId, resent.MessageId);
        var message = await rig.App.QueryAsync(db => db.Messages.SingleAsync(m => m.Id == ack.MessageId));
        Assert.Equal("Here is the photo of the damage", message.Text);
        Assert.Equal(1, message.AttachmentCount);
        Assert.Equal(session.ConversationId, await rig.App.QueryAsync(db => db.Conversations.Where(c => c.Id == message.ConversationId).Select(c => c.ThreadKey).SingleAsync()));
        Assert.Equal(1, await rig.App.QueryAsync(db => db.Attachments.CountAsync()));
    }

    [Fact]
    public async Task Files_that_are_too_large_of_another_type_disguised_or_for_someone_else_are_refused_and_nothing_is_stored()
    {
        await using var rig = await WebChatRig.StartAsync(widgetSettings: new { allowedOrigins = new[] { WebChatRig.Origin }, maxUploadBytes = 1024, uploadContentTypes = new[] { "image/png", "text/plain" } });
        var alice = await rig.StartSessionAsync();
        var mallory = await rig.StartSessionAsync();

        var tooLarge = await UploadAsync(rig, alice, [.. Png, .. new byte[2000]], "image/png");
        var html = await UploadAsync(rig, alice, "<script>alert(1)</script>"u8.ToArray(), "text/html", "page.html");
        var disguised = await UploadAsync(rig, alice, "<html><script>alert(1)</script></html>"u8.ToArray(), "image/png");
        var binaryAsText = await UploadAsync(rig, alice, [0x41, 0x00, 0x42], "text/plain", "notes.txt");
        var foreign = await UploadAsync(rig, mallory, Png, "image/png", conversationId: alice.ConversationId);
        var noToken = await UploadAsync(rig, alice, Png, "image/png", token: "forged");

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        Assert.Contains("too large", await tooLarge.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, html.StatusCode);
        Assert.Contains("image/png, text/plain", await html.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, disguised.StatusCode);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, binaryAsText.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, foreign.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, noToken.StatusCode);
        Assert.Equal(0, await rig.App.QueryAsync(db => db.Messages.CountAsync()));

        var fine = await UploadAsync(rig, alice, "Order 4711, size M"u8.ToArray(), "text/plain", "notes.txt");
        Assert.Equal(HttpStatusCode.OK, fine.StatusCode);
    }

    [Fact]
    public async Task A_widget_with_uploads_off_takes_no_files()
    {
        await using var rig = await WebChatRig.StartAsync(widgetSettings: new { allowedOrigins = new[] { WebChatRig.Origin }, maxUploadBytes = 0 });
        var session = await rig.StartSessionAsync();

        var refused = await UploadAsync(rig, session, Png, "image/png");

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("does not accept files", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
