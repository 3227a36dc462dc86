using System.Net;
using System.Net.Http.Json;
using System.Text;
using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Email;

/// <summary>The console's quarantine page (/Admin/Quarantine): admins only, anti-forgery on every post, reasons shown
/// as text, the raw source only as a download; retry and delete do what the admin API does.</summary>
public sealed class QuarantinePageTests : AppTest
{
    private static void AssertRedirectsTo(HttpResponseMessage response, string path)
    {
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith(path, response.Headers.Location!.OriginalString.Replace("https://localhost", ""), StringComparison.Ordinal);
    }

    private static byte[] Raw(string text) => Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\r\n"));

    [Fact]
    public async Task Admins_list_download_retry_and_delete_quarantined_mail_and_agents_cannot()
    {
        using (var api = App.Admin())
        {
            var settings = new
            {
                address = "support@example.test",
                imap = new { host = "127.0.0.1", port = 1, security = "none", user = "support", password = "pw" },
                smtp = new { host = "127.0.0.1", port = 1, security = "none" },
            };
            (await api.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings })).EnsureSuccessStatusCode();
        }
        var state = App.Services.GetRequiredService<IMailboxStateStore>();
        var own = Raw("From: support@example.test\nTo: support@example.test\nSubject: loop\nMessage-ID: <loop@example.test>\n\nOur own.\n");
        var customer = Raw("From: Carol <carol@customer.example.test>\nTo: support@example.test\nSubject: Help\nMessage-ID: <help-q@customer.example.test>\n\nPlease help.\n");
        await state.QuarantineAsync(new QuarantinedMail("support", "INBOX", 1, 1, "Sent from this mailbox's own address <script>alert(1)</script>", own, DateTimeOffset.UtcNow));
        await state.QuarantineAsync(new QuarantinedMail("support", "INBOX", 1, 2, "The core could not take the mail (then)", customer, DateTimeOffset.UtcNow));
        var (items, _) = await App.Services.GetRequiredService<IMailboxAdminStore>().ListQuarantineAsync("support", 0, 10);
        var ownId = items.Single(i => i.Uid == 1).Id;
        var customerId = items.Single(i => i.Uid == 2).Id;

        // An agent is refused everything, reading and posting.
        using (var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent))
        {
            AssertRedirectsTo(await agent.GetAsync("/Admin/Quarantine"), "/Account/AccessDenied");
            AssertRedirectsTo(await agent.GetAsync($"/Admin/Quarantine?handler=Raw&channel=support&qid={ownId}"), "/Account/AccessDenied");
            AssertRedirectsTo(await agent.SubmitAsync("/Queues", new() { ["channel"] = "support", ["qid"] = ownId.ToString() }, "/Admin/Quarantine?handler=Delete"), "/Account/AccessDenied");
        }
        Assert.Equal(2, (await App.Services.GetRequiredService<IMailboxAdminStore>().ListQuarantineAsync("support", 0, 10)).Total);

        using var admin = await ConsoleBrowser.SignedInAsync(App, "admin@example.com", ConsoleRoles.Admin);
        var page = await admin.PageAsync("/Admin/Quarantine");
        Assert.Contains("href=\"/Admin/Quarantine\"", page);
        Assert.Contains("The core could not take the mail (then)", page);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", page);
        Assert.DoesNotContain("<script>alert(1)", page);
        Assert.Contains($"{own.Length} B", page);

        using (var raw = await admin.GetAsync($"/Admin/Quarantine?handler=Raw&channel=support&qid={ownId}"))
        {
            Assert.Equal(HttpStatusCode.OK, raw.StatusCode);
            Assert.Equal("message/rfc822", raw.Content.Headers.ContentType?.MediaType);
            Assert.Equal("attachment", raw.Content.Headers.ContentDisposition?.DispositionType);
            Assert.Equal(own, await raw.Content.ReadAsByteArrayAsync());
            Assert.Equal("nosniff", raw.Headers.GetValues("X-Content-Type-Options").Single());
        }
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync($"/Admin/Quarantine?handler=Raw&channel=other&qid={ownId}")).StatusCode);

        // A post without the anti-forgery token is refused and changes nothing.
        var forged = await admin.PostWithoutTokenAsync("/Admin/Quarantine?handler=Delete", new() { ["channel"] = "support", ["qid"] = ownId.ToString() });
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Equal(2, (await App.Services.GetRequiredService<IMailboxAdminStore>().ListQuarantineAsync("support", 0, 10)).Total);

        // Retry: the customer's mail is stored now; our own stays refused (and stays listed).
        AssertRedirectsTo(await admin.SubmitAsync("/Admin/Quarantine", new() { ["channel"] = "support", ["qid"] = customerId.ToString() }, "/Admin/Quarantine?handler=Retry"), "/Admin/Quarantine");
        page = await admin.PageAsync("/Admin/Quarantine");
        Assert.Contains("Stored in ticket #", page);
        Assert.DoesNotContain(customerId.ToString(), page);
        AssertRedirectsTo(await admin.SubmitAsync("/Admin/Quarantine", new() { ["channel"] = "support", ["qid"] = ownId.ToString() }, "/Admin/Quarantine?handler=Retry"), "/Admin/Quarantine");
        page = await admin.PageAsync("/Admin/Quarantine");
        Assert.Contains("Still refused", page);
        Assert.Contains(ownId.ToString(), page);

        AssertRedirectsTo(await admin.SubmitAsync("/Admin/Quarantine", new() { ["channel"] = "support", ["qid"] = ownId.ToString() }, "/Admin/Quarantine?handler=Delete"), "/Admin/Quarantine");
        page = await admin.PageAsync("/Admin/Quarantine");
        Assert.Contains($"Deleted {ownId}.", page);
        Assert.Contains("Nothing in quarantine.", page);
    }
}
