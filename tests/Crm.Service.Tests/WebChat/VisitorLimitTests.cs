using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Crm.Connectors.Abstractions;
using Crm.Connectors.WebChat;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.WebChat;

/// <summary>What open chats and a visitor who floods may cost the service (review findings W1, W2, W4, W5, W9, W11):
/// open hub connections never take the HTTP in-flight places, and every costly visitor call has a budget.</summary>
public sealed class VisitorLimitTests
{
    private static async Task<HubConnection> ConnectedAsync(WebChatRig rig, SessionResponse session)
    {
        var hub = rig.Visitor(session.Token);
        await hub.StartAsync();
        // A round trip: the connection's long poll is now in flight.
        await hub.InvokeAsync<ChatHistory>("History", session.ConversationId);
        return hub;
    }

    [Fact]
    public async Task Open_visitor_connections_do_not_take_the_services_in_flight_places()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Http:Limits:MaxConcurrentRequests"] = "2",
            ["Http:Limits:QueueLimit"] = "0",
            ["Http:Limits:MaxConcurrentRequestsPerAddress"] = "3",
        });
        var hubs = new List<HubConnection>();
        for (var i = 0; i < 3; i++)
            hubs.Add(await ConnectedAsync(rig, await rig.StartSessionAsync()));
        using var other = rig.Page();

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await other.GetAsync("/health/live")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await other.GetAsync("/api/v1/webchat/shop/config")).StatusCode);
            await Task.Delay(50);
        }
        Assert.All(hubs, hub => Assert.Equal(HubConnectionState.Connected, hub.State));
        foreach (var hub in hubs)
            await hub.DisposeAsync();
    }

    [Fact]
    public async Task Visitor_connections_are_capped_per_visitor_and_per_address_with_a_readable_refusal()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:MaxConnectionsPerVisitor"] = "2",
            ["Channels:WebChat:MaxConnectionsPerAddress"] = "3",
        });
        var alice = await rig.StartSessionAsync();
        var bob = await rig.StartSessionAsync();
        var first = await ConnectedAsync(rig, alice);
        var second = await ConnectedAsync(rig, alice);

        var thirdTab = rig.Visitor(alice.Token);
        var tabs = await RefusalAsync(thirdTab);
        var bobFirst = await ConnectedAsync(rig, bob);
        var bobSecond = rig.Visitor(bob.Token);
        var network = await RefusalAsync(bobSecond);

        Assert.Contains("too many tabs", tabs, StringComparison.Ordinal);
        Assert.Contains("from your network", network, StringComparison.Ordinal);
        // A closed connection gives its place back.
        await first.DisposeAsync();
        var connections = rig.App.Services.GetRequiredService<VisitorConnections>();
        await Eventually.WaitForAsync(() => Task.FromResult(connections.Total), n => n == 2, what: "the closed connection counted out");
        var again = await ConnectedAsync(rig, bob);
        Assert.Equal(HubConnectionState.Connected, again.State);
        foreach (var hub in new[] { second, thirdTab, bobFirst, bobSecond, again })
            await hub.DisposeAsync();
    }

    /// <summary>The hub refuses in OnConnectedAsync, after the handshake: the start fails, or the connection closes
    /// at once with the reason.</summary>
    private static async Task<string> RefusalAsync(HubConnection hub)
    {
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

    [Fact]
    public async Task Turning_a_widget_off_ends_what_its_open_connections_may_do()
    {
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();
        // Over a WebSocket: the gate sees only the upgrade request, so the hub itself must notice.
        var server = rig.App.Server;
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(server.BaseAddress, $"/hubs/visitor?widget=shop&access_token={Uri.EscapeDataString(session.Token)}"), options =>
            {
                options.Transports = HttpTransportType.WebSockets;
                options.SkipNegotiation = true;
                options.WebSocketFactory = async (context, cancellationToken) =>
                {
                    var client = server.CreateWebSocketClient();
                    client.ConfigureRequest = request => request.Headers.Origin = WebChatRig.Origin;
                    return await client.ConnectAsync(context.Uri, cancellationToken);
                };
            })
            .Build();
        await hub.StartAsync();
        await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Hello");

        using var admin = rig.App.Admin();
        var off = await admin.PutAsJsonAsync("/api/v1/admin/channels/shop", new { kind = "webchat", name = "Web chat shop", enabled = false, settings = new { allowedOrigins = new[] { WebChatRig.Origin } } });
        Assert.True(off.IsSuccessStatusCode, await off.Content.ReadAsStringAsync());

        var refused = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-2", "Still there?"));
        Assert.Contains("no longer available", refused.Message, StringComparison.Ordinal);
        Assert.Equal(1, await rig.App.QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == WebChatRig.Widget)));
    }

    [Fact]
    public async Task Reading_the_history_in_a_loop_is_refused_after_a_few_reads()
    {
        await using var rig = await WebChatRig.StartAsync();
        var session = await rig.StartSessionAsync();
        await using var hub = rig.Visitor(session.Token);
        await hub.StartAsync();

        var answered = 0;
        HubException? refused = null;
        for (var i = 0; i < 40 && refused is null; i++)
        {
            try
            {
                await hub.InvokeAsync<ChatHistory>("History", session.ConversationId);
                answered++;
            }
            catch (HubException ex)
            {
                refused = ex;
            }
        }

        Assert.NotNull(refused);
        Assert.Contains("rate-limited:", refused.Message, StringComparison.Ordinal);
        Assert.InRange(answered, 1, 12);
        Assert.Equal(HubConnectionState.Connected, hub.State);
    }

    [Fact]
    public async Task New_sessions_from_one_address_are_budgeted_so_a_script_cannot_open_ticket_after_ticket()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?>
        {
            ["Channels:WebChat:NewSessionBurstPerAddress"] = "5",
            ["Channels:WebChat:NewSessionsPerHourPerAddress"] = "1",
        });
        using var page = rig.Page();
        var started = new List<SessionResponse>();
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 15; i++)
        {
            var response = await page.PostAsJsonAsync("/api/v1/webchat/shop/sessions", new { token = (string?)null });
            if (response.IsSuccessStatusCode)
                started.Add((await response.Content.ReadFromJsonAsync<SessionResponse>(CrmApp.Json))!);
            else
                refused ??= response;
        }
        foreach (var session in started)
        {
            await using var hub = rig.Visitor(session.Token);
            await hub.StartAsync();
            await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Spam");
        }

        Assert.Equal(5, started.Count);
        Assert.NotNull(refused);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(refused.Headers.Contains("Retry-After"));
        Assert.Contains("Too many new chats", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(5, await rig.App.QueryAsync(db => db.Tickets.CountAsync()));
        // A returning visitor (a valid token) is not a new session and still gets in.
        var back = await rig.StartSessionAsync(started[0].Token);
        Assert.Equal(started[0].ConversationId, back.ConversationId);
    }

    [Fact]
    public async Task A_visitor_typing_in_a_loop_gets_few_searches()
    {
        var fake = new CountingSuggestions();
        await using var rig = await WebChatRig.StartAsync(services: s => s.AddSingleton<IArticleSuggestions>(fake));
        var session = await rig.StartSessionAsync();
        await using var hub = rig.Visitor(session.Token);
        await hub.StartAsync();

        for (var i = 0; i < 25; i++)
            await hub.InvokeAsync<List<ArticleSuggestion>>("Typing", session.ConversationId, true, $"reset my password {i}", "en");

        Assert.InRange(fake.Calls, 1, 8);
    }

    [Fact]
    public async Task Typing_over_long_polling_does_not_use_up_the_addresss_request_budget()
    {
        await using var rig = await WebChatRig.StartAsync(new Dictionary<string, string?> { ["Channels:WebChat:RequestsPerMinutePerAddress"] = "10" });
        var session = await rig.StartSessionAsync();
        await using var hub = rig.Visitor(session.Token);
        await hub.StartAsync();

        for (var i = 0; i < 60; i++)
            await hub.InvokeAsync<List<ArticleSuggestion>>("Typing", session.ConversationId, i % 2 == 0, "", "en");

        Assert.Equal(HubConnectionState.Connected, hub.State);
        var ack = await hub.InvokeAsync<SendAck>("Send", session.ConversationId, "c-1", "Still here");
        Assert.False(ack.Duplicate);
    }

    [Fact]
    public async Task A_widget_with_uploads_off_refuses_a_large_upload_without_reading_it()
    {
        var read = new BodyCounter();
        await using var rig = await WebChatRig.StartAsync(services: read.Register, widgetSettings: new { allowedOrigins = new[] { WebChatRig.Origin }, maxUploadBytes = 0 });
        var session = await rig.StartSessionAsync();

        var refused = await UploadAsync(rig, session, new StreamContent(new CountingStream(20 * 1024 * 1024)), chunked: true);

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.True(read.Bytes < 64 * 1024, $"{read.Bytes} bytes of the body were read before the refusal");
    }

    [Fact]
    public async Task A_body_longer_than_the_widgets_limit_is_not_read_to_the_end()
    {
        var read = new BodyCounter();
        await using var rig = await WebChatRig.StartAsync(services: read.Register,
            widgetSettings: new { allowedOrigins = new[] { WebChatRig.Origin }, maxUploadBytes = 1024 * 1024, uploadContentTypes = new[] { "text/plain" } });
        var session = await rig.StartSessionAsync();

        var refused = await UploadAsync(rig, session, new StreamContent(new CountingStream(20 * 1024 * 1024)), chunked: true);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
        Assert.True(read.Bytes < 2 * 1024 * 1024, $"{read.Bytes} bytes of the body were read before the refusal");
    }

    [Fact]
    public async Task Uploads_beyond_the_addresss_byte_quota_are_refused_and_not_stored()
    {
        await using var rig = await WebChatRig.StartAsync(
            new Dictionary<string, string?> { ["Channels:WebChat:UploadBytesPerHourPerAddress"] = (3 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture) },
            widgetSettings: new { allowedOrigins = new[] { WebChatRig.Origin }, maxUploadBytes = 2 * 1024 * 1024, uploadContentTypes = new[] { "text/plain" } });
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            // A fresh visitor each time: the quota is the address's, not only the visitor's.
            var session = await rig.StartSessionAsync();
            var text = new byte[1024 * 1024];
            Array.Fill(text, (byte)'a');
            text[0] = (byte)('0' + i);
            var content = new ByteArrayContent(text);
            content.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
            statuses.Add((await UploadAsync(rig, session, content)).StatusCode);
        }

        Assert.Equal(2, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(4, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
        Assert.Equal(2, await rig.App.QueryAsync(db => db.Attachments.CountAsync()));
    }

    [Fact]
    public async Task A_script_sent_as_text_is_stored_under_a_txt_name()
    {
        await using var rig = await WebChatRig.StartAsync(widgetSettings: new { allowedOrigins = new[] { WebChatRig.Origin }, uploadContentTypes = new[] { "text/plain" } });
        var session = await rig.StartSessionAsync();
        var content = new ByteArrayContent("<script>alert(1)</script>"u8.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("text/plain");

        var stored = await UploadAsync(rig, session, content, fileName: "invoice.pdf.html");
        var plain = new ByteArrayContent("Order 4711"u8.ToArray());
        plain.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
        var notes = await UploadAsync(rig, session, plain, fileName: "notes.txt", clientMessageId: "u-2");

        Assert.Equal(HttpStatusCode.OK, stored.StatusCode);
        Assert.Equal(HttpStatusCode.OK, notes.StatusCode);
        var names = await rig.App.QueryAsync(db => db.Attachments.Select(a => a.FileName).ToListAsync());
        Assert.Equal(["invoice.pdf.html.txt", "notes.txt"], names.Order());
    }

    [Theory]
    [InlineData("2002:0102:0304:1::1", "2002:0102:0304:2::1")]
    [InlineData("64:ff9b::1.2.3.4", "1.2.3.4")]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2:ffff::9")]
    public void The_web_chats_address_key_is_the_edges(string one, string other)
    {
        static string KeyOf(string address) => VisitorHub.AddressOf(new DefaultHttpContext { Connection = { RemoteIpAddress = IPAddress.Parse(address) } });

        Assert.Equal(KeyOf(one), KeyOf(other));
        Assert.Equal(ClientAddresses.KeyOf(IPAddress.Parse(one)), KeyOf(one));
    }

    private static async Task<HttpResponseMessage> UploadAsync(WebChatRig rig, SessionResponse session, HttpContent file, bool chunked = false, string fileName = "notes.txt", string clientMessageId = "u-1")
    {
        using var page = rig.Page();
        page.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", session.Token);
        using var form = new MultipartFormDataContent();
        form.Add(new StringContent(session.ConversationId), "conversationId");
        form.Add(new StringContent(clientMessageId), "clientMessageId");
        if (file.Headers.ContentType is null)
            file.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
        form.Add(file, "file", fileName);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/webchat/shop/uploads") { Content = form };
        if (chunked)
            request.Headers.TransferEncodingChunked = true;
        return await page.SendAsync(request);
    }

    /// <summary>Counts the bytes the service reads of upload request bodies (a filter in front of the whole pipeline).</summary>
    private sealed class BodyCounter : IStartupFilter
    {
        private long _bytes;

        public long Bytes => Interlocked.Read(ref _bytes);

        public void Register(IServiceCollection services) => services.AddSingleton<IStartupFilter>(this);

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (http, inner) =>
            {
                if (http.Request.Path.Value?.EndsWith("/uploads", StringComparison.Ordinal) == true)
                    http.Request.Body = new CountingReader(http.Request.Body, this);
                await inner(http);
            });
            next(app);
        };

        private sealed class CountingReader(Stream body, BodyCounter counter) : Stream
        {
            public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            {
                var n = await body.ReadAsync(buffer, cancellationToken);
                Interlocked.Add(ref counter._bytes, n);
                return n;
            }

            public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
                ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

            public override int Read(byte[] buffer, int offset, int count)
            {
                var n = body.Read(buffer, offset, count);
                Interlocked.Add(ref counter._bytes, n);
                return n;
            }

            public override bool CanRead => true;
            public override bool CanSeek => false;
            public override bool CanWrite => false;
            public override long Length => throw new NotSupportedException();
            public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
            public override void Flush() { }
            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
            public override void SetLength(long value) => throw new NotSupportedException();
            public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        }
    }

    /// <summary>A body of <c>a</c>s that counts what the server pulled from it.</summary>
    private sealed class CountingStream(long length) : Stream
    {
        private long _position;

        public long BytesRead => Interlocked.Read(ref _position);

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            Array.Fill(buffer, (byte)'a', offset, n);
            Interlocked.Add(ref _position, n);
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class CountingSuggestions : IArticleSuggestions
    {
        private int _calls;

        public int Calls => _calls;

        public Task<IReadOnlyList<ArticleSuggestion>> SuggestAsync(string question, string? language, int max, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            return Task.FromResult<IReadOnlyList<ArticleSuggestion>>([new ArticleSuggestion("Reset your password", "/help/en/articles/reset-your-password", null)]);
        }
    }
}
