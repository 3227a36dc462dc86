using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Crm.Connectors.Email;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Tests.Email;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Playwright;
using MimeKit;

namespace Crm.Service.Tests.Console;

/// <summary>
/// An email's HTML body in the console (issue 16): its inline cid: images show from the ticket's own attachments, and
/// remote images stay blocked until the agent presses "Show remote images" on that message. In headless chromium against
/// the whole service on a real port; the mail goes through the real MIME mapper and the conversation grain.
/// </summary>
public sealed class MessageBodyTests : IAsyncLifetime
{
    private const string Agent = "agent@example.com";

    /// <summary>A 2×1 PNG (so naturalWidth says it decoded).</summary>
    private static readonly byte[] Png = Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAYAAAD0In+KAAAAEUlEQVR42mP8z8Dwn4GBgQEAFRgCAXQdW3wAAAAASUVORK5CYII=");

    private readonly TempDirectory _data = new();
    private CrmApp _app = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;
    private string _baseUrl = "";

    public async Task InitializeAsync()
    {
        var port = FreePorts.Next();
        _baseUrl = $"http://127.0.0.1:{port}";
        _app = new CrmApp(_data.Path);
        _app.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        _app.StartServer();
        await _app.CreateApiChannelAsync();
        await ConsoleBrowser.CreateUserAsync(_app, Agent, ConsoleRoles.Agent);
        _playwright = await Playwright.CreateAsync();
        _browser = await Chromium.LaunchAsync(_playwright);
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        await _app.DisposeAsync();
        _data.Dispose();
    }

    /// <summary>A customer's email with an inline image (cid:), a remote image and a plain attachment, received as the
    /// email connector hands it over (MimeMessageMapper's parse, the raw bytes as message/rfc822).</summary>
    private async Task<IngestResult> ReceiveMailAsync(string id, string remoteImageUrl, byte[]? pdf = null)
    {
        var builder = new BodyBuilder
        {
            HtmlBody = $"<p>Our logo: <img alt=\"logo\" src=\"cid:logo.{id}@example.test\"> and <img alt=\"remote\" src=\"{remoteImageUrl}\">"
                + $" and <img alt=\"unknown\" src=\"cid:nothing@example.test\"> and <img alt=\"relative\" src=\"/Tickets/1?handler=Timeline\"></p>",
        };
        var logo = builder.LinkedResources.Add("logo.png", Png, new ContentType("image", "png"));
        logo.ContentId = $"logo.{id}@example.test";
        if (pdf is not null)
            builder.Attachments.Add("doc.pdf", pdf, new ContentType("application", "pdf"));
        var message = new MimeMessage { Subject = "Logo", MessageId = $"{id}@example.test", Body = builder.ToMessageBody() };
        message.From.Add(new MailboxAddress("Ann", $"ann.{id}@example.test"));
        message.To.Add(new MailboxAddress("Support", "support@example.test"));
        var raw = MimeMappingTests.Bytes(message);
        var mail = new MimeMessageMapper(Options.Create(new EmailIngestLimits())).Parse(raw, DateTimeOffset.UtcNow);
        var inbound = new InboundMessage
        {
            ChannelAccountId = "bridge",
            ThreadKey = mail.From.Address,
            ExternalMessageId = mail.ExternalMessageId!,
            Sender = new SenderIdentity(IdentityKind.Email, mail.From.Address, mail.From.Name),
            SentAt = mail.SentAt,
            Subject = mail.Subject,
            Text = mail.Text,
            Html = mail.Html,
            Attachments = mail.Attachments,
            RawSource = raw,
            RawContentType = "message/rfc822",
        };
        return await _app.Grains.GetGrain<IConversationGrain>(GrainKeys.Conversation(inbound.ChannelAccountId, inbound.ThreadKey)).ReceiveAsync(inbound);
    }

    private async Task<IPage> SignedInPageAsync()
    {
        var page = await _browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 800 } });
        await page.GotoAsync(_baseUrl + "/");
        await page.SignInAsync(Agent, new Regex("/Queues"), "#main");
        return page;
    }

    [Fact]
    public async Task An_inline_cid_image_shows_from_the_ticket_and_remote_images_load_only_after_the_agents_consent()
    {
        using var remote = new ImageServer(Png);
        var received = await ReceiveMailAsync("m1", remote.Url);
        var page = await SignedInPageAsync();

        await page.GotoAsync($"{_baseUrl}/Tickets/{received.TicketNumber}");
        await page.Locator($"#m-{received.MessageId} details.html").EvaluateAsync("d => d.open = true");
        // Read through the parent (the frame is same-origin without scripts; nothing is evaluated inside it).
        Task<string?> Image(string alt, string what) => page.EvaluateAsync<string?>(
            $"() => {{ const i = document.querySelector(\"iframe[name='body-{received.MessageId}']\")?.contentDocument?.querySelector(\"img[alt='{alt}']\"); return i ? i.{what} + '' : null; }}");

        // The cid: image is the message's own stored attachment, decoded by the browser inside the sandboxed frame.
        await Eventually.WaitForAsync(() => Image("logo", "naturalWidth"), w => w == "2", TimeSpan.FromSeconds(60), "the inline image decoded");
        Assert.StartsWith($"/Tickets/{received.TicketNumber}?handler=Inline&id=", await Image("logo", "getAttribute('src')"), StringComparison.Ordinal);
        // Review RC4: an unknown cid: and a relative address the sender wrote (an authenticated request in this
        // same-origin frame) have no src.
        Assert.Equal("null", await Image("unknown", "getAttribute('src')"));
        Assert.Equal("null", await Image("relative", "getAttribute('src')"));
        // By default the remote image has no address and its server was never asked (same document as the logo).
        Assert.Equal("null", await Image("remote", "getAttribute('src')"));
        Assert.Equal("0", await Image("remote", "naturalWidth"));
        Assert.Equal(0, remote.Requests);

        await page.Locator($"#m-{received.MessageId}").GetByRole(AriaRole.Button, new() { Name = "Show remote images" }).ClickAsync();

        await Eventually.WaitForAsync(() => Image("remote", "naturalWidth"), w => w == "2", TimeSpan.FromSeconds(60), "the remote image after consent");
        Assert.True(remote.Requests >= 1);
        Assert.Null(remote.Referer);
        Assert.Equal("2", await Image("logo", "naturalWidth"));
    }

    [Fact]
    public async Task The_body_frame_allows_images_of_this_ticket_only_and_serves_only_image_attachments_inline()
    {
        var first = await ReceiveMailAsync("m2", "https://tracker.example.invalid/pixel.gif");
        var other = await ReceiveMailAsync("m3", "https://tracker.example.invalid/pixel.gif", "%PDF-1.4 not an image"u8.ToArray());
        using var agent = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = new Uri(_baseUrl) };
        agent.DefaultRequestHeaders.Add("Cookie", await ConsoleBrowser.SessionCookieOverHttpAsync(new Uri(_baseUrl), Agent));
        var origin = _baseUrl;
        var logo = await _app.QueryAsync(db => Task.FromResult(db.Attachments.Single(a => a.MessageId == first.MessageId).Id));

        var body = await agent.GetAsync($"/Tickets/{first.TicketNumber}?handler=Body&id={first.MessageId}");
        var consented = await agent.GetAsync($"/Tickets/{first.TicketNumber}?handler=Body&id={first.MessageId}&remote=true");
        var elsewhere = await agent.GetAsync($"/Tickets/{other.TicketNumber}?handler=Body&id={first.MessageId}");
        var image = await agent.GetAsync($"/Tickets/{first.TicketNumber}?handler=Inline&id={logo}");
        var imageElsewhere = await agent.GetAsync($"/Tickets/{other.TicketNumber}?handler=Inline&id={logo}");
        var pdf = await _app.QueryAsync(db => Task.FromResult(db.Attachments.Single(a => a.MessageId == other.MessageId && a.FileName == "doc.pdf").Id));
        var pdfInline = await agent.GetAsync($"/Tickets/{other.TicketNumber}?handler=Inline&id={pdf}");
        var pdfDownload = await agent.GetAsync($"/Tickets/{other.TicketNumber}?handler=Attachment&id={pdf}");

        var html = await body.Content.ReadAsStringAsync();
        Assert.Contains($"src=\"/Tickets/{first.TicketNumber}?handler=Inline&amp;id={logo}\"", html, StringComparison.Ordinal);
        Assert.Contains("data-remote-src=\"https://tracker.example.invalid/pixel.gif\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain(" src=\"https://tracker", html, StringComparison.Ordinal);
        Assert.Equal($"default-src 'none'; img-src {origin}/Tickets/{first.TicketNumber}; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox allow-same-origin",
            body.Headers.GetValues("Content-Security-Policy").Single());
        Assert.Equal("SAMEORIGIN", body.Headers.GetValues("X-Frame-Options").Single());
        // Review RC5: the console's same-origin default does not overwrite the frame's policy.
        Assert.Equal("no-referrer", body.Headers.GetValues("Referrer-Policy").Single());
        var consentedHtml = await consented.Content.ReadAsStringAsync();
        Assert.Contains(" src=\"https://tracker.example.invalid/pixel.gif\"", consentedHtml, StringComparison.Ordinal);
        Assert.DoesNotContain("data-remote-src", consentedHtml, StringComparison.Ordinal);
        Assert.Contains("img-src " + origin + $"/Tickets/{first.TicketNumber} https: http:;", consented.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, elsewhere.StatusCode);
        Assert.Equal("image/png", image.Content.Headers.ContentType!.MediaType);
        // Review RC8: a customer's image is not kept in the browser.
        Assert.Equal("no-store", image.Headers.CacheControl!.ToString());
        Assert.Equal(Png, await image.Content.ReadAsByteArrayAsync());
        Assert.Equal(HttpStatusCode.NotFound, imageElsewhere.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, pdfInline.StatusCode);
        Assert.Equal(HttpStatusCode.OK, pdfDownload.StatusCode);
    }

    [Fact]
    public void Cid_references_map_only_to_the_same_messages_image_attachments_by_their_bytes()
    {
        var builder = new BodyBuilder { HtmlBody = "<img src=\"cid:a@x\"><img src=\"cid:%3Cb@x%3E\">" };
        builder.LinkedResources.Add("a.png", Png, new ContentType("image", "png")).ContentId = "a@x";
        builder.LinkedResources.Add("b.png", [.. Png, 0], new ContentType("image", "png")).ContentId = "b@x";
        var message = new MimeMessage { Body = builder.ToMessageBody() };
        var a = Guid.NewGuid();
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Png));
        var otherSha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData([.. Png, 0]));

        // b's bytes are not an attachment of this message; a non-image attachment never maps.
        var map = MessageBodyView.InlineImages(new MemoryStream(MimeMappingTests.Bytes(message)), [(a, sha, "image/png"), (Guid.NewGuid(), otherSha, "application/pdf")]);
        var html = MessageBodyView.Render("<p><img src=\"cid:a@x\"><img src=\"cid:%3Cb@x%3E\"><img data-remote-src=\"https://r.example/x.png\"></p>", 7, map, remoteImages: false);

        Assert.Equal(new Dictionary<string, Guid> { ["a@x"] = a }, map);
        Assert.Contains($"<img src=\"/Tickets/7?handler=Inline&amp;id={a}\">", html, StringComparison.Ordinal);
        Assert.DoesNotContain("cid:", html, StringComparison.Ordinal);
        Assert.Contains("<img data-remote-src=\"https://r.example/x.png\">", html, StringComparison.Ordinal);
        Assert.Contains("<img src=\"https://r.example/x.png\" referrerpolicy=\"no-referrer\">", MessageBodyView.Render("<img data-remote-src=\"https://r.example/x.png\">", 7, map, remoteImages: true), StringComparison.Ordinal);
        Assert.Contains("<img data-remote-src=\"javascript:alert(1)\">", MessageBodyView.Render("<img data-remote-src=\"javascript:alert(1)\">", 7, map, remoteImages: true), StringComparison.Ordinal);
        // Review RE1: a consented address that resolves to the console itself never loads (it would go with the
        // agent's cookie): scheme-relative tricks and the console's own host; another host does.
        foreach (var own in new[] { "https:?handler=Timeline", "https:/Tickets/1?handler=Timeline", "https://console.example:8443/Tickets/1?handler=Timeline", "HTTPS://CONSOLE.EXAMPLE:8443/x" })
            Assert.DoesNotContain("src=", MessageBodyView.Render($"<img data-remote-src=\"{own}\">", 7, map, remoteImages: true, consoleAuthority: "console.example:8443").Replace("data-remote-src=", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("<img src=\"https://console.example:9000/x.png\"", MessageBodyView.Render("<img data-remote-src=\"https://console.example:9000/x.png\">", 7, map, remoteImages: true, consoleAuthority: "console.example:8443"), StringComparison.Ordinal);
    }

    /// <summary>Review RC4: the frame is same-origin, so a relative or same-origin address the sender wrote would be an
    /// authenticated request (a page render) per image and viewer: only this message's own cid: images load.</summary>
    [Fact]
    public void The_body_frame_drops_every_address_the_sender_wrote_but_its_own_cid_images()
    {
        var a = Guid.NewGuid();
        var map = new Dictionary<string, Guid> { ["a@x"] = a };

        var html = MessageBodyView.Render(
            "<p><img src=\"/Tickets/1?handler=Timeline\"><img src=\"?handler=Timeline&amp;x=1\" alt=\"t\"><img src=\"cid:a@x\" srcset=\"/Tickets/1?handler=Links 2x\">" +
            "<img src=\"cid:other@x\"><table background=\"/Tickets/1\"><tr><td background=\"Tickets/2\">x</td></tr></table></p>", 7, map, remoteImages: true);

        Assert.DoesNotContain("handler=Timeline", html, StringComparison.Ordinal);
        Assert.DoesNotContain("handler=Links", html, StringComparison.Ordinal);
        Assert.DoesNotContain("background", html, StringComparison.Ordinal);
        Assert.DoesNotContain("cid:", html, StringComparison.Ordinal);
        Assert.Contains("<img alt=\"t\">", html, StringComparison.Ordinal);
        Assert.Contains($"<img src=\"/Tickets/7?handler=Inline&amp;id={a}\">", html, StringComparison.Ordinal);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(html, " src="));
    }

    /// <summary>A tiny HTTP server on loopback that serves one image and counts the requests (the "remote" sender's host).</summary>
    private sealed class ImageServer : IDisposable
    {
        private readonly HttpListener _listener = new();
        private int _requests;

        public ImageServer(byte[] image)
        {
            var port = FreePorts.Next();
            Url = $"http://127.0.0.1:{port}/pixel.png";
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            _listener.Start();
            _ = Task.Run(async () =>
            {
                while (_listener.IsListening)
                {
                    HttpListenerContext context;
                    try
                    {
                        context = await _listener.GetContextAsync();
                    }
                    catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                    {
                        return;
                    }
                    Referer = context.Request.Headers["Referer"];
                    Interlocked.Increment(ref _requests);
                    context.Response.ContentType = "image/png";
                    await context.Response.OutputStream.WriteAsync(image);
                    context.Response.Close();
                }
            });
        }

        public string Url { get; }
        public int Requests => Volatile.Read(ref _requests);
        public string? Referer { get; private set; }

        public void Dispose() => _listener.Close();
    }
}
