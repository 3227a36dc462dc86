using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>Issue 16/17 (N4): an agent's reply carries files and Cc addresses end to end, from the API's multipart
/// body and from the console's reply form, through the outbox and the real Postfix, read back from Dovecot.</summary>
public sealed class ReplyFilesTests : IAsyncLifetime
{
    private const string Colleague = "colleague@example.test", ColleaguePassword = "colleague-pw";
    private readonly TempDirectory _data = new();
    private MailServer _mail = null!;
    private CrmApp _app = null!;

    public async Task InitializeAsync()
    {
        _mail = await MailServer.StartAsync();
        await _mail.AddUserAsync(Colleague, ColleaguePassword);
        _app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
            ["Channels:Email:PollInterval"] = "00:00:01",
        });
        using var admin = _app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() })).EnsureSuccessStatusCode();
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _mail.DisposeAsync();
        _data.Dispose();
    }

    private async Task<long> TicketAsync(string messageId)
    {
        var message = new MimeMessage { MessageId = messageId, Subject = "Invoice please" };
        message.From.Add(new MailboxAddress("Carol Customer", MailServer.Customer));
        message.To.Add(new MailboxAddress("Support", MailServer.Support));
        message.Body = new TextPart("plain") { Text = "Send me the invoice." };
        await _mail.SendAsync(message);
        return await Eventually.WaitForAsync(
            () => _app.QueryAsync(db => db.Messages.Where(m => m.ChannelAccountId == "support" && m.ExternalId!.StartsWith(messageId)).Select(m => m.TicketNumber).FirstOrDefaultAsync()),
            n => n > 0, TimeSpan.FromSeconds(60), $"ticket of {messageId}");
    }

    private static byte[] Pdf(int seed)
    {
        var bytes = new byte[200_000];
        new Random(seed).NextBytes(bytes);
        "%PDF-1.4\n"u8.CopyTo(bytes);
        return bytes;
    }

    private async Task<MimeMessage> ReceivedAsync(string user, string password, Guid replyId)
    {
        var id = $"crm.{replyId:N}@example.test";
        var mails = await Eventually.WaitForAsync(() => _mail.ReadAsync(user, password), m => m.Any(x => x.Message.MessageId == id), TimeSpan.FromSeconds(60), $"reply {id} in {user}'s INBOX");
        return mails.Single(x => x.Message.MessageId == id).Message;
    }

    private static void AssertFile(MimeMessage mail, string fileName, byte[] expected)
    {
        var file = Assert.Single(mail.Attachments.OfType<MimePart>());
        Assert.Equal(fileName, file.FileName);
        Assert.Equal("application/pdf", file.ContentType.MimeType);
        using var content = new MemoryStream();
        file.Content!.DecodeTo(content);
        Assert.Equal(expected, content.ToArray());
    }

    [Fact]
    public async Task An_api_reply_with_a_pdf_and_a_cc_arrives_with_the_file_and_the_cc_and_the_timeline_lists_the_file()
    {
        var number = await TicketAsync("files-1@customer.example.test");
        var pdf = Pdf(1);
        using var agent = await _app.AgentAsync();

        using var bad = new MultipartFormDataContent { { new StringContent("Here it is."), "text" }, { new StringContent("not an address"), "cc" } };
        var refused = await agent.PostAsync($"/api/v1/tickets/{number}/reply", bad);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains("not an address", await refused.Content.ReadAsStringAsync());

        using var form = new MultipartFormDataContent
        {
            { new StringContent("Here it is."), "text" },
            { new StringContent($"Colleague <{Colleague}>"), "cc" },
        };
        var file = new ByteArrayContent(pdf);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream"); // the declared type is not trusted
        form.Add(file, "files", "Rechnung 42.pdf");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/tickets/{number}/reply") { Content = form };
        request.Headers.Add("Idempotency-Key", "files-1");
        var response = await agent.SendAsync(request);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var created = await response.Content.ReadFromJsonAsync<JsonElement>();
        var replyId = created.GetProperty("id").GetGuid();
        var listed = Assert.Single(created.GetProperty("attachments").EnumerateArray());
        Assert.Equal("Rechnung 42.pdf", listed.GetProperty("fileName").GetString());
        Assert.Equal("application/pdf", listed.GetProperty("contentType").GetString());

        var mail = await ReceivedAsync(MailServer.Customer, MailServer.CustomerPassword, replyId);
        Assert.Contains("Here it is.", mail.TextBody);
        AssertFile(mail, "Rechnung 42.pdf", pdf);
        Assert.Equal([Colleague], mail.Cc.Mailboxes.Select(m => m.Address));
        AssertFile(await ReceivedAsync(Colleague, ColleaguePassword, replyId), "Rechnung 42.pdf", pdf);

        var timeline = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{number}/timeline");
        var entry = timeline.GetProperty("items").EnumerateArray().Single(e => e.GetProperty("id").GetGuid() == replyId);
        Assert.Equal("Rechnung 42.pdf", Assert.Single(entry.GetProperty("attachments").EnumerateArray()).GetProperty("fileName").GetString());
        // Sent once: the outbox row is done and the mail is in the INBOX once, with one file.
        await Eventually.WaitForAsync(() => _app.QueryAsync(db => db.Messages.Where(m => m.Id == replyId).Select(m => m.Delivery).SingleAsync()),
            d => d == DeliveryStatus.Sent, what: "reply marked sent");
        Assert.Single(await _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Message.MessageId == $"crm.{replyId:N}@example.test");
        Assert.Equal(1, await _app.QueryAsync(db => db.Attachments.CountAsync(a => a.MessageId == replyId)));
    }

    [Fact]
    public async Task The_console_reply_form_sends_a_file_and_a_cc()
    {
        var number = await TicketAsync("files-2@customer.example.test");
        var pdf = Pdf(2);
        using var console = await ConsoleBrowser.SignedInAsync(_app, "agent@example.com", ConsoleRoles.Agent);
        var html = await console.PageAsync($"/Tickets/{number}");
        Assert.Contains("enctype=\"multipart/form-data\"", html);
        Assert.Contains("name=\"ReplyCc\"", html);
        var token = Regex.Match(html, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        using var form = new MultipartFormDataContent
        {
            { new StringContent("The invoice, from the console."), "ReplyText" },
            { new StringContent(Colleague), "ReplyCc" },
            { new StringContent(Regex.Match(html, "name=\"RequestId\" value=\"([0-9a-f]{32})\"").Groups[1].Value), "RequestId" },
            { new StringContent(WebUtility.HtmlDecode(token)), "__RequestVerificationToken" },
        };
        form.Add(new ByteArrayContent(pdf), "ReplyFiles", "invoice.pdf");
        var posted = await console.Client.PostAsync($"/Tickets/{number}?handler=Reply", form);
        Assert.Equal(HttpStatusCode.Redirect, posted.StatusCode);

        var replyId = await Eventually.WaitForAsync(
            () => _app.QueryAsync(db => db.Messages.Where(m => m.TicketNumber == number && m.Direction == MessageDirection.Outbound).Select(m => m.Id).FirstOrDefaultAsync()),
            id => id != Guid.Empty, what: "the console's reply stored");
        var mail = await ReceivedAsync(MailServer.Customer, MailServer.CustomerPassword, replyId);
        AssertFile(mail, "invoice.pdf", pdf);
        Assert.Equal([Colleague], mail.Cc.Mailboxes.Select(m => m.Address));
        var page = await console.PageAsync($"/Tickets/{number}");
        Assert.Contains("invoice.pdf", page);
    }
}
