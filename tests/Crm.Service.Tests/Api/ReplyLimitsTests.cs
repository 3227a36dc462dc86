using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Grains;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;

namespace Crm.Service.Tests.Api;

/// <summary>The email5 review's reply findings that the API and the ticket grain settle before anything is stored:
/// Cc addresses checked with the SMTP sender's own rule (ER6) and the total size of a reply's files (ER4).</summary>
public sealed class ReplyLimitsTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private CrmApp _app = null!;

    public async Task InitializeAsync()
    {
        _app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Tickets:MaxReplyAttachmentBytes"] = "60000",
            ["Tickets:MaxReplyTotalBytes"] = "100000",
        });
        await _app.CreateApiChannelAsync();
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        _data.Dispose();
    }

    private async Task<long> TicketAsync()
    {
        var response = await _app.PostMessageAsync(new { messageId = "in-1", sender = new { id = "user-7" }, text = "Help" });
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string field, string? words = null)
    {
        Assert.Equal(status, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(field, JsonSerializer.Deserialize<JsonElement>(body).GetProperty("field").GetString());
        if (words is not null)
            Assert.Contains(words, body);
    }

    // ER6: each of these passed MailboxAddress.TryParse and a '@' check (201), and the SMTP sender then refused the
    // whole reply (IsAddress: no whitespace, at most 320 characters, IdentityNormalizer.Email).
    public static TheoryData<string> RefusedBySender => new()
    {
        "\"john doe\"@x.test",
        new string('a', 400) + "@x.test",
        "a\u200Bb@x.test",
    };

    [Theory]
    [MemberData(nameof(RefusedBySender))]
    public async Task A_cc_address_the_sender_would_refuse_is_refused_in_json_multipart_and_the_grain(string cc)
    {
        var number = await TicketAsync();
        using var agent = await _app.AgentAsync();

        await AssertProblemAsync(await agent.PostAsJsonAsync($"/api/v1/tickets/{number}/reply", new { text = "Hi", cc = new[] { cc } }),
            HttpStatusCode.UnprocessableEntity, "cc", "email address");
        using var form = new MultipartFormDataContent { { new StringContent("Hi"), "text" }, { new StringContent(cc), "cc" } };
        await AssertProblemAsync(await agent.PostAsync($"/api/v1/tickets/{number}/reply", form), HttpStatusCode.UnprocessableEntity, "cc", "email address");

        // The grain refuses it too (defence for callers other than the API), before it looks at the channel.
        var refused = await Assert.ThrowsAsync<DomainException>(() => _app.Grains.GetGrain<ITicketGrain>(number).ReplyAsync(new AgentReply
        {
            Actor = "agent-1",
            Text = "Hi",
            Cc = [cc],
        }));
        Assert.Equal("cc", refused.Field);
        Assert.Contains("mail sender takes", refused.Message); // not the refusal of any Cc on a non-email ticket

        // The same address the sender takes still passes the API's check (it then reaches the grain, which refuses a Cc
        // on this API-channel ticket for its own reason).
        var fine = await agent.PostAsJsonAsync($"/api/v1/tickets/{number}/reply", new { text = "Hi", cc = new[] { "Colleague <colleague@x.test>" } });
        Assert.Contains("Only email replies", await fine.Content.ReadAsStringAsync());
    }

    // ER4: files within their own limit but over the reply's total are refused with 413 before anything is stored.
    [Fact]
    public async Task Files_over_the_reply_total_are_refused_by_the_api_and_the_grain()
    {
        var number = await TicketAsync();
        using var agent = await _app.AgentAsync();
        using var form = new MultipartFormDataContent { { new StringContent("Two files"), "text" } };
        form.Add(new ByteArrayContent(new byte[55_000]), "files", "a.bin");
        form.Add(new ByteArrayContent(new byte[55_000]), "files", "b.bin");
        var response = await agent.PostAsync($"/api/v1/tickets/{number}/reply", form);
        await AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, "files");

        var refused = await Assert.ThrowsAsync<DomainException>(() => _app.Grains.GetGrain<ITicketGrain>(number).ReplyAsync(new AgentReply
        {
            Actor = "agent-1",
            Text = "Two files",
            Attachments = [new InboundAttachment("a.bin", null, new byte[55_000]), new InboundAttachment("b.bin", null, new byte[55_000])],
        }));
        Assert.Equal(DomainErrorKind.TooLarge, refused.Kind);
        Assert.Equal("attachments", refused.Field);
        Assert.Equal(0, await _app.QueryAsync(db => Task.FromResult(db.Attachments.Count())));
    }

    // ER15: a body that is not a valid multipart form is the client's mistake (400), not "too large" (413); a body over
    // the reply's limit stays 413.
    [Fact]
    public async Task A_malformed_multipart_reply_is_400_and_an_oversize_one_413()
    {
        var number = await TicketAsync();
        using var agent = await _app.AgentAsync();
        using var broken = new ByteArrayContent("--other\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nHi\r\n"u8.ToArray());
        broken.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=expected");
        await AssertProblemAsync(await agent.PostAsync($"/api/v1/tickets/{number}/reply", broken), HttpStatusCode.BadRequest, "body");

        using var noBoundary = new ByteArrayContent("text=Hi"u8.ToArray());
        noBoundary.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data");
        await AssertProblemAsync(await agent.PostAsync($"/api/v1/tickets/{number}/reply", noBoundary), HttpStatusCode.BadRequest, "body");

        using var large = new MultipartFormDataContent { { new StringContent("Large"), "text" } };
        large.Add(new ByteArrayContent(new byte[3 * 1024 * 1024]), "files", "big.bin");
        await AssertProblemAsync(await agent.PostAsync($"/api/v1/tickets/{number}/reply", large), HttpStatusCode.RequestEntityTooLarge, "body");
    }

    // ER16: a UTF-8 text file is sent with its charset (else read as US-ASCII), an Office file as its Office type
    // rather than the zip its bytes sniff as.
    [Fact]
    public void A_replys_text_file_carries_its_charset_and_an_office_file_its_office_type()
    {
        Assert.Equal("text/plain; charset=utf-8", AttachmentRules.ReplyContentType("ü.csv", "a;ü\n"u8));
        byte[] zip = [0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0];
        Assert.Equal("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", AttachmentRules.ReplyContentType("Prices.XLSX", zip));
        Assert.Equal("application/vnd.openxmlformats-officedocument.wordprocessingml.document", AttachmentRules.ReplyContentType("letter.docx", zip));
        Assert.Equal("application/zip", AttachmentRules.ReplyContentType("archive.zip", zip));
        Assert.Equal("application/pdf", AttachmentRules.ReplyContentType("a.docx", "%PDF-1.4"u8));
    }

    // ER4: the default total keeps the encoded mail under Postfix's default limit, and a maximal reply (files and the
    // longest text and HTML) far below Orleans' message size limit, so it never fails with an opaque 500.
    [Fact]
    public void The_default_reply_total_fits_postfix_and_orleans()
    {
        var options = new TicketOptions();
        var encodedFiles = (options.MaxReplyTotalBytes + 56) / 57 * 78; // base64 lines of 76 characters and CRLF
        var encodedText = 2 * ((InputLimits.MaxMessageTextLength * 3 + 56) / 57 * 78); // text and HTML, 3 bytes a character
        Assert.True(encodedFiles + encodedText + 64 * 1024 < 10_240_000, $"{encodedFiles + encodedText} bytes encoded");
        Assert.True(options.MaxReplyAttachmentBytes <= options.MaxReplyTotalBytes);
        Assert.True(TicketOptions.MaxReplyTotalBytesLimit + 2 * InputLimits.MaxMessageTextLength * 3 < new SiloMessagingOptions().MaxMessageBodySize);
    }

    [Fact]
    public async Task Uploads_beyond_the_nodes_concurrency_limit_are_refused_with_429_while_one_is_read()
    {
        // Review ER5: each upload holds its files in memory, so the node reads only so many at once.
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?> { ["Uploads:MaxConcurrent"] = "1", ["Uploads:MaxQueued"] = "0" });
        await app.CreateApiChannelAsync();
        var (number, _) = await app.ReceiveAsync("limit-1", "uma");
        using var agent = await app.AgentAsync();
        static MultipartFormDataContent Form(string text)
        {
            var form = new MultipartFormDataContent { { new StringContent(text), "text" } };
            form.Add(new ByteArrayContent(new byte[4000]), "files", "data.bin");
            return form;
        }

        // The node's one turn is taken (an upload being read); the next upload is refused before its body is read.
        var gate = app.Services.GetRequiredService<Crm.Service.Api.UploadGate>();
        var lease = await gate.Limiter.AcquireAsync(1);
        Assert.True(lease.IsAcquired);
        using (var refusedForm = Form("A second one."))
        {
            var refused = await agent.PostAsync($"/api/v1/tickets/{number}/reply", refusedForm);
            Assert.True(refused.Headers.Contains("Retry-After"));
            await AssertProblemAsync(refused, HttpStatusCode.TooManyRequests, "files");
        }

        // With the turn given back, the same upload passes the limit (this API ticket then refuses files: 422, not 429).
        lease.Dispose();
        using var after = Form("After the first.");
        var passed = await agent.PostAsync($"/api/v1/tickets/{number}/reply", after);
        Assert.NotEqual(HttpStatusCode.TooManyRequests, passed.StatusCode);
        Assert.False(passed.Headers.Contains("Retry-After"));
    }

    private static MultipartFormDataContent FileForm(string text)
    {
        var form = new MultipartFormDataContent { { new StringContent(text), "text" } };
        form.Add(new ByteArrayContent(new byte[4000]), "files", "data.bin");
        return form;
    }

    [Fact]
    public async Task One_callers_uploads_take_at_most_its_share_so_another_callers_upload_still_passes()
    {
        // Review RA2: one key with slow uploads (each holding a turn while its body trickles in) held every turn of the
        // node. Now a caller has at most its share; the node's other turns stay for everyone else.
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?>
        {
            ["Uploads:MaxConcurrent"] = "2", ["Uploads:MaxQueued"] = "0", ["Uploads:MaxConcurrentPerCaller"] = "1",
        });
        await app.CreateApiChannelAsync();
        var (number, _) = await app.ReceiveAsync("share-1", "uma");
        using var keyA = await app.AgentAsync("agent-a");
        using var keyB = await app.AgentAsync("agent-b");
        var recordA = await app.Services.GetRequiredService<Crm.Service.Auth.ApiKeyDirectory>().FindAsync(keyA.DefaultRequestHeaders.GetValues("X-Api-Key").Single(), default);
        var asA = new Microsoft.AspNetCore.Http.DefaultHttpContext
        {
            User = new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity(
                [new System.Security.Claims.Claim(System.Security.Claims.ClaimTypes.NameIdentifier, recordA!.Id.ToString())], Crm.Service.Auth.ApiKeyAuthenticationHandler.SchemeName)),
        };
        var gate = app.Services.GetRequiredService<Crm.Service.Api.UploadGate>();

        // Key A's slow uploads: the first holds a turn, a second is refused at once (A cannot take the node's other turn).
        using var slow = await gate.EnterAsync(asA);
        Assert.NotNull(slow);
        using (var more = await gate.EnterAsync(asA))
            Assert.Null(more);
        using (var refusedForm = FileForm("A's next upload."))
        {
            var refused = await keyA.PostAsync($"/api/v1/tickets/{number}/reply", refusedForm);
            Assert.True(refused.Headers.Contains("Retry-After"));
            await AssertProblemAsync(refused, HttpStatusCode.TooManyRequests, "files");
        }

        // Key B's upload gets the node's other turn (this API ticket then refuses files: 422, not 429).
        using var formB = FileForm("B's upload.");
        var passed = await keyB.PostAsync($"/api/v1/tickets/{number}/reply", formB);
        Assert.NotEqual(HttpStatusCode.TooManyRequests, passed.StatusCode);
    }

    [Fact]
    public async Task A_console_reply_with_a_file_takes_an_upload_turn_and_gets_a_field_error_when_none_is_free()
    {
        // Review RA2: the console's reply form with files holds them in memory like the API's, under the same limit.
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?> { ["Uploads:MaxConcurrent"] = "1", ["Uploads:MaxQueued"] = "0" });
        await app.CreateApiChannelAsync();
        var (number, _) = await app.ReceiveAsync("console-limit-1", "uma");
        using var console = await ConsoleBrowser.SignedInAsync(app, "agent@example.com", Crm.Service.Auth.ConsoleRoles.Agent);
        var html = await console.PageAsync($"/Tickets/{number}");
        var token = System.Text.RegularExpressions.Regex.Match(html, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        var requestId = System.Text.RegularExpressions.Regex.Match(html, "name=\"RequestId\" value=\"([0-9a-f]{32})\"").Groups[1].Value;
        MultipartFormDataContent Form() => new()
        {
            { new StringContent("With a file."), "ReplyText" },
            { new StringContent(requestId), "RequestId" },
            { new StringContent(WebUtility.HtmlDecode(token)), "__RequestVerificationToken" },
            { new ByteArrayContent(new byte[4000]), "ReplyFiles", "data.bin" },
        };

        var gate = app.Services.GetRequiredService<Crm.Service.Api.UploadGate>();
        using (var lease = await gate.Limiter.AcquireAsync(1))
        {
            Assert.True(lease.IsAcquired);
            using var form = Form();
            var refused = await console.Client.PostAsync($"/Tickets/{number}?handler=Reply", form);
            Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
            Assert.Contains(Crm.Service.Api.UploadGate.BusyMessage, await refused.Content.ReadAsStringAsync());
        }

        // With the turn free, the same form passes the limit (the API ticket may still refuse the file itself).
        using var again = Form();
        var after = await console.Client.PostAsync($"/Tickets/{number}?handler=Reply", again);
        Assert.DoesNotContain(Crm.Service.Api.UploadGate.BusyMessage, await after.Content.ReadAsStringAsync());
    }
}
