using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Blobs;
using Crm.Service.Infrastructure.Mailboxes;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>The email5 review's open reply findings on the outbound side (ER3, ER4, ER8, ER9, ER12, LD5, LD6, EM1, EM2), against the
/// real Postfix/Dovecot and, where a server must misbehave on purpose, <see cref="FakeSmtpServer"/>.</summary>
public sealed class ReplySixthReviewTests : MailServerTests
{
    private static readonly Dictionary<string, string?> EmailSettings = new()
    {
        ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
        ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
        ["Channels:Email:PollInterval"] = "00:00:01",
    };

    private static Dictionary<string, string?> With(params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string?>(EmailSettings);
        foreach (var (key, value) in extra)
            settings[key] = value;
        return settings;
    }

    /// <summary>The support channel reading the real Dovecot, sending through <paramref name="smtpPort"/> (default: Postfix).</summary>
    private async Task AddChannelAsync(CrmApp app, int? smtpPort = null, bool acknowledge = false)
    {
        object settings = smtpPort is { } port
            ? new
            {
                address = MailServer.Support,
                displayName = "Example Support",
                imap = new { host = "127.0.0.1", port = _mail.ImapPort, security = "none", user = MailServer.Support, password = MailServer.SupportPassword, folder = "INBOX", afterProcessing = "seen" },
                smtp = new { host = "127.0.0.1", port, security = "none", user = MailServer.Support, password = MailServer.SupportPassword },
                autoAcknowledgement = acknowledge ? new { enabled = true, language = "en" } : null,
            }
            : _mail.ChannelSettings();
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings })).EnsureSuccessStatusCode();
    }

    private async Task<long> TicketAsync(CrmApp app, string messageId)
    {
        var message = new MimeMessage { MessageId = messageId, Subject = "Invoice please" };
        message.From.Add(new MailboxAddress("Carol Customer", MailServer.Customer));
        message.To.Add(new MailboxAddress("Support", MailServer.Support));
        message.Body = new TextPart("plain") { Text = "Send me the invoice." };
        await _mail.SendAsync(message);
        return await Eventually.WaitForAsync(
            () => app.QueryAsync(db => db.Messages.Where(m => m.ChannelAccountId == "support" && m.ExternalId!.StartsWith(messageId)).Select(m => m.TicketNumber).FirstOrDefaultAsync()),
            n => n > 0, TimeSpan.FromSeconds(60), $"ticket of {messageId}");
    }

    private static async Task<Guid> ReplyAsync(HttpClient agent, long number, object body)
    {
        var response = await agent.PostAsJsonAsync($"/api/v1/tickets/{number}/reply", body);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private static byte[] Pdf(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        "%PDF-1.4\n"u8.CopyTo(bytes);
        return bytes;
    }

    // ER9: who got a copy is shown on the reply (API answer and timeline, the console) and in the ticket's history.
    [Fact]
    public async Task A_cc_reply_shows_its_cc_in_the_api_the_console_and_the_history()
    {
        await using var app = new CrmApp(_data.Path, EmailSettings);
        await AddChannelAsync(app);
        var number = await TicketAsync(app, "cc-shown@customer.example.test");
        using var agent = await app.AgentAsync();

        var created = await agent.PostAsJsonAsync($"/api/v1/tickets/{number}/reply", new { text = "Copying my colleague.", cc = new[] { "colleague@example.test" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var entry = await created.Content.ReadFromJsonAsync<JsonElement>();
        var replyId = entry.GetProperty("id").GetGuid();
        Assert.Equal(["colleague@example.test"], entry.GetProperty("cc").EnumerateArray().Select(c => c.GetString()));

        var timeline = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/tickets/{number}/timeline");
        var listed = timeline.GetProperty("items").EnumerateArray().Single(e => e.GetProperty("id").GetGuid() == replyId);
        Assert.Equal(["colleague@example.test"], listed.GetProperty("cc").EnumerateArray().Select(c => c.GetString()));

        var history = await agent.GetStringAsync($"/api/v1/tickets/{number}/history");
        Assert.Contains("colleague@example.test", history);

        using (var console = await ConsoleBrowser.SignedInAsync(app, "agent@example.com", ConsoleRoles.Agent))
        {
            var page = await console.PageAsync($"/Tickets/{number}");
            Assert.Contains("<p class=\"cc muted\">Cc: colleague@example.test</p>", page);
        }
    }

    // ER12: a replayed multipart reply answers with its files, as the first answer did.
    [Fact]
    public async Task A_replayed_reply_lists_its_files()
    {
        await using var app = new CrmApp(_data.Path, EmailSettings);
        await AddChannelAsync(app);
        var number = await TicketAsync(app, "replay@customer.example.test");
        using var agent = await app.AgentAsync();

        // ER12: the same multipart body with the same key, twice: both answers list the file.
        async Task<JsonElement> PostFileAsync()
        {
            using var form = new MultipartFormDataContent { { new StringContent("The invoice."), "text" } };
            form.Add(new ByteArrayContent(Pdf(50_000, 1)), "files", "invoice.pdf");
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/tickets/{number}/reply") { Content = form };
            request.Headers.Add("Idempotency-Key", "replay-1");
            var response = await agent.SendAsync(request);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            return await response.Content.ReadFromJsonAsync<JsonElement>();
        }
        var first = await PostFileAsync();
        var replay = await PostFileAsync();
        Assert.Equal(first.GetProperty("id").GetGuid(), replay.GetProperty("id").GetGuid());
        Assert.Equal("invoice.pdf", Assert.Single(replay.GetProperty("attachments").EnumerateArray()).GetProperty("fileName").GetString());

        // ER10: the files are read back (and sent) in upload order, not in the random order of ids made in one millisecond.
        using var many = new MultipartFormDataContent { { new StringContent("Ten files."), "text" } };
        var names = Enumerable.Range(0, 10).Select(i => $"part-{9 - i}.pdf").ToList();
        foreach (var (name, i) in names.Select((n, i) => (n, i)))
            many.Add(new ByteArrayContent(Pdf(1_000, 10 + i)), "files", name);
        var posted = await agent.PostAsync($"/api/v1/tickets/{number}/reply", many);
        Assert.Equal(HttpStatusCode.Created, posted.StatusCode);
        var manyId = (await posted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        var stored = await app.Services.GetRequiredService<ICrmStore>().FindAttachmentsAsync(manyId);
        Assert.Equal(names, stored.Select(a => a.FileName));
    }

    // ER4: a mail over the server's SIZE limit is refused before it is sent, with words for the agent; the largest
    // reply the defaults allow (all files and long text) goes through the same Postfix with its default limit.
    [Fact]
    public async Task A_mail_over_the_servers_size_limit_fails_with_a_clear_reason_and_the_default_maximum_goes_through()
    {
        await using var app = new CrmApp(_data.Path, EmailSettings);
        await AddChannelAsync(app);
        var sender = app.Services.GetServices<IOutboundSender>().Single(s => s.Channel == ChannelKind.Email);
        OutboundDelivery Delivery(byte[] file, string text) => new()
        {
            MessageId = Guid.CreateVersion7(),
            TicketNumber = 4711,
            ChannelAccountId = "support",
            ThreadKey = "no-such-thread",
            Recipient = "email:" + MailServer.Customer,
            Author = "agent-1",
            Text = text,
            CreatedAt = DateTimeOffset.UtcNow,
            Attempt = 1,
            Attachments = [new OutboundAttachment("big.pdf", "application/pdf", file)],
        };

        var refused = await sender.SendAsync(Delivery(Pdf(8_000_000, 2), "Too big."));
        Assert.False(refused.Success);
        Assert.True(refused.Permanent);
        Assert.Contains("MB", refused.AgentReason);
        Assert.Contains("mail server takes at most", refused.AgentReason);

        var largest = new Crm.Service.Grains.TicketOptions().MaxReplyTotalBytes;
        var sent = await sender.SendAsync(Delivery(Pdf((int)largest, 3), new string('ü', 50_000)));
        Assert.True(sent.Success, sent.Error);
    }

    // ER3: the whole mail was written, then the server's 250 did not come within the send timeout. It may well be
    // delivered: the reply is not retried (exactly one DATA), and the agent is told to check before resending.
    [Fact]
    public async Task A_send_that_times_out_after_the_whole_mail_was_written_is_not_retried_and_the_agent_is_told()
    {
        await using var smtp = new FakeSmtpServer();
        await using var app = new CrmApp(_data.Path, With(("Outbox:SendTimeout", "00:00:02"), ("Outbox:MaxAttempts", "5")));
        await AddChannelAsync(app, smtp.Port);
        var number = await TicketAsync(app, "slow-250@customer.example.test");
        using var agent = await app.AgentAsync();

        var replyId = await ReplyAsync(agent, number, new { text = "Did this arrive?" });
        var failed = await Eventually.WaitForAsync(
            () => app.QueryAsync(db => db.Messages.Where(m => m.Id == replyId).Select(m => new { m.Delivery, m.DeliveryError }).SingleAsync()),
            m => m.Delivery != DeliveryStatus.Queued, TimeSpan.FromSeconds(60), "the reply settled");
        Assert.Equal(DeliveryStatus.Failed, failed.Delivery);
        Assert.Contains("may have been delivered", failed.DeliveryError);
        Assert.Contains("check", failed.DeliveryError);
        var row = await Eventually.WaitForAsync(() => app.QueryAsync(db => db.Outbox.Where(o => o.MessageId == replyId).SingleAsync()),
            o => o.State != OutboxState.Pending, what: "the outbox row settled");
        Assert.Equal(OutboxState.Failed, row.State);
        Assert.Equal(1, row.Attempts);
        Assert.Equal(1, smtp.Received);
    }

    // EM1: the service stops while the server holds its 250 for the reply. The outcome is recorded despite the stop
    // (not dropped with the stopping token), so a restart on the same data does not mail the customer again.
    [Fact]
    public async Task A_stop_while_the_server_holds_its_answer_does_not_send_the_reply_again_after_a_restart()
    {
        await using var smtp = new FakeSmtpServer();
        Guid replyId;
        var first = new CrmApp(_data.Path, With(("Outbox:SendTimeout", "00:05:00")));
        try
        {
            await AddChannelAsync(first, smtp.Port);
            var number = await TicketAsync(first, "stop-during-250@customer.example.test");
            using var agent = await first.AgentAsync();
            replyId = await ReplyAsync(agent, number, new { text = "Sent during a deploy." });
            await smtp.FirstDataReceived.WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            await first.DisposeAsync();
        }

        await using var second = new CrmApp(_data.Path, With(("Outbox:SendTimeout", "00:05:00")));
        var settled = await Eventually.WaitForAsync(
            () => second.QueryAsync(db => db.Messages.Where(m => m.Id == replyId).Select(m => new { m.Delivery, m.DeliveryError }).SingleAsync()),
            m => m.Delivery != DeliveryStatus.Queued || smtp.Received > 1, TimeSpan.FromSeconds(60), "the reply settled after the restart");
        Assert.Equal(1, smtp.Received);
        Assert.Equal(DeliveryStatus.Failed, settled.Delivery);
        Assert.StartsWith("Not confirmed", settled.DeliveryError);
    }

    // EM1: a crash after the attempt was committed and the mail written, before any outcome: the data directory as the
    // crash leaves it (copied while the server holds its 250) starts without sending the reply again.
    [Fact]
    public async Task A_crash_during_a_send_leaves_the_reply_not_confirmed_instead_of_sending_it_again()
    {
        await using var smtp = new FakeSmtpServer();
        using var image = new TempDirectory();
        await using (var first = new CrmApp(_data.Path, With(("Outbox:SendTimeout", "00:05:00"))))
        {
            await AddChannelAsync(first, smtp.Port);
            var number = await TicketAsync(first, "crash-during-250@customer.example.test");
            using var agent = await first.AgentAsync();
            var replyId = await ReplyAsync(agent, number, new { text = "Sent just before a crash." });
            await smtp.FirstDataReceived.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(OutboxState.Pending, await first.QueryAsync(db => db.Outbox.Where(o => o.MessageId == replyId).Select(o => o.State).SingleAsync()));
            CopyDirectory(_data.Path, image.Path);

            await using var second = new CrmApp(image.Path, With(("Outbox:SendTimeout", "00:05:00")));
            var settled = await Eventually.WaitForAsync(
                () => second.QueryAsync(db => db.Messages.Where(m => m.Id == replyId).Select(m => new { m.Delivery, m.DeliveryError }).SingleAsync()),
                m => m.Delivery != DeliveryStatus.Queued || smtp.Received > 1, TimeSpan.FromSeconds(60), "the reply settled after the crash");
            Assert.Equal(1, smtp.Received);
            Assert.Equal(DeliveryStatus.Failed, settled.Delivery);
            Assert.StartsWith("Not confirmed", settled.DeliveryError);
            smtp.Release();
        }
    }

    private static OutboundDelivery Delivery(byte[] file) => new()
    {
        MessageId = Guid.CreateVersion7(),
        TicketNumber = 4712,
        ChannelAccountId = "support",
        ThreadKey = "no-such-thread",
        Recipient = "email:" + MailServer.Customer,
        Author = "agent-1",
        Text = "The file.",
        CreatedAt = DateTimeOffset.UtcNow,
        Attempt = 1,
        Attachments = [new OutboundAttachment("big.pdf", "application/pdf", file)],
    };

    // EM2: "may have been delivered" is decided by the protocol stage. A connection cut long before the final dot is a
    // plain retry (and the retry goes through once); one cut after the whole mail and its dot arrived, unanswered, is
    // ambiguous and not retried.
    [Fact]
    public async Task A_cut_before_the_final_dot_is_retried_and_a_cut_after_it_is_not_confirmed()
    {
        await using var app = new CrmApp(_data.Path, EmailSettings);
        var sender = app.Services.GetServices<IOutboundSender>().Single(s => s.Channel == ChannelKind.Email);

        await using (var smtp = new FakeSmtpServer { HoldDataReply = false, DropDuringData = true })
        {
            await AddChannelAsync(app, smtp.Port);
            var cut = await sender.SendAsync(Delivery(Pdf(8_000_000, 4)));
            Assert.False(cut.Success);
            Assert.False(cut.Ambiguous, cut.Error);
            Assert.False(cut.Permanent, cut.Error);
            var retried = await sender.SendAsync(Delivery(Pdf(8_000_000, 4)));
            Assert.True(retried.Success, retried.Error);
            Assert.Equal(1, smtp.Received);
        }

        await using (var smtp = new FakeSmtpServer { HoldDataReply = false, DropAfterData = true })
        {
            await AddChannelAsync(app, smtp.Port);
            var lost = await sender.SendAsync(Delivery(Pdf(50_000, 5)));
            Assert.True(lost.Ambiguous, lost.Error);
            Assert.Equal(1, smtp.Received);
        }
    }

    // EM2: the stage detector sees the end of data only after DATA and only as "\r\n.\r\n", however MailKit splits
    // its writes; dot-stuffed lines ("..") and a "DATA" inside an earlier command do not count.
    [Fact]
    public void The_end_of_data_is_seen_only_when_the_final_dot_was_written()
    {
        var stage = new Crm.Connectors.Email.SmtpSender.DataStage();
        void Write(string text) { var bytes = Encoding.ASCII.GetBytes(text); stage.LogClient(bytes, 0, bytes.Length); }

        Write("EHLO x\r\nMAIL FROM:<DATA@x>\r\nRCPT TO:<a@b>\r\n.\r\n");
        Assert.False(stage.EndWritten);
        Write("DA");
        Write("TA\r\n");
        Write("Subject: x\r\n\r\n..\r\n..hidden\r\nlast line\r");
        Assert.False(stage.EndWritten);
        Write("\n.");
        Assert.False(stage.EndWritten);
        Write("\r\n");
        Assert.True(stage.EndWritten);
    }

    // LD6: the node stops while the server is slow to answer QUIT after its 250 for an acknowledgement. The mark is
    // written despite the stop, so the next holder (here: a restart on the same data) does not mail it again.
    [Fact]
    public async Task A_stop_during_quit_after_an_acknowledgements_250_does_not_send_it_again()
    {
        await using var smtp = new FakeSmtpServer { HoldDataReply = false, HoldQuitReply = true };
        await using (var first = new CrmApp(_data.Path, EmailSettings))
        {
            await AddChannelAsync(first, smtp.Port, acknowledge: true);
            await TicketAsync(first, "ack-quit@customer.example.test");
            await smtp.FirstQuitReceived.WaitAsync(TimeSpan.FromSeconds(90));
        }

        await using var second = new CrmApp(_data.Path, EmailSettings);
        var row = await Eventually.WaitForAsync(() => second.QueryAsync(db => db.AutomaticMail.AsNoTracking().SingleAsync()),
            r => r.State is not (AutomaticMailRecord.Pending or AutomaticMailRecord.Sending) || smtp.Received > 1, TimeSpan.FromSeconds(60), "the acknowledgement settled");
        Assert.Equal(AutomaticMailRecord.Sent, row.State);
        Assert.Equal(1, smtp.Received);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var directory in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, directory)));
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            if (Path.GetFileName(file).EndsWith(".lock", StringComparison.OrdinalIgnoreCase))
                continue;
            using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var target = File.Create(Path.Combine(to, Path.GetRelativePath(from, file)));
            source.CopyTo(target);
        }
    }

    // LD5: a send held by a slow server takes one place only: a reply queued after it, on another channel, goes out
    // while the first is still waiting for its server (a pass used to wait for its whole batch).
    [Fact]
    public async Task A_slow_send_does_not_hold_up_replies_queued_after_it()
    {
        await using var smtp = new FakeSmtpServer();
        await using var bridge = await WebhookReceiver.StartAsync();
        await using var app = new CrmApp(_data.Path, With(("Outbox:SendTimeout", "00:05:00")));
        await AddChannelAsync(app, smtp.Port);
        await app.CreateApiChannelAsync(webhookUrl: bridge.Url);
        var number = await TicketAsync(app, "slow-pass@customer.example.test");
        using var agent = await app.AgentAsync();

        var slowId = await ReplyAsync(agent, number, new { text = "A large reply, slowly checked." });
        await smtp.FirstDataReceived.WaitAsync(TimeSpan.FromSeconds(60));

        var opened = await app.PostMessageAsync(new { messageId = "in-1", sender = new { id = "user-7" }, text = "Help" });
        var other = (await opened.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
        var quickId = await ReplyAsync(agent, other, new { text = "Quick answer." });
        await Eventually.WaitForAsync(() => app.QueryAsync(db => db.Messages.Where(m => m.Id == quickId).Select(m => m.Delivery).SingleAsync()),
            d => d == DeliveryStatus.Sent, TimeSpan.FromSeconds(60), "the quick reply sent while the slow one waits");
        Assert.Equal(DeliveryStatus.Queued, await app.QueryAsync(db => db.Messages.Where(m => m.Id == slowId).Select(m => m.Delivery).SingleAsync()));

        smtp.Release();
        await Eventually.WaitForAsync(() => app.QueryAsync(db => db.Messages.Where(m => m.Id == slowId).Select(m => m.Delivery).SingleAsync()),
            d => d == DeliveryStatus.Sent, TimeSpan.FromSeconds(60), "the slow reply sent once released");
        Assert.Equal(1, smtp.Received);
    }

    // ER8: a delete that checks "does any row name these bytes?" between the reply's blob put and its commit (a
    // knowledge-base attachment delete, the quarantine prune) must not remove the bytes the reply is about to name.
    [Fact]
    public async Task A_blob_delete_racing_a_replys_put_and_commit_leaves_the_replys_file()
    {
        var hooked = new HookedBlobStore();
        await using var app = new CrmApp(_data.Path, EmailSettings, services: s => s.AddSingleton<IBlobStore>(sp =>
        {
            hooked.Inner = ActivatorUtilities.CreateInstance<FileBlobStore>(sp);
            return hooked;
        }));
        await AddChannelAsync(app);
        var number = await TicketAsync(app, "gate@customer.example.test");
        using var agent = await app.AgentAsync();
        var pdf = Pdf(40_000, 4);
        Task<int>? racingDelete = null;
        hooked.SkipPuts = 1; // the file's first put runs outside the gate (review EM3); the race is with the gated one
        hooked.AfterPut = async sha256 =>
        {
            // What a deleter does after its own row is gone; held off by the gate while the reply commits.
            var contexts = app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>();
            racingDelete = Task.Run(async () =>
            {
                await using var db = await contexts.CreateDbContextAsync();
                return await BlobReferences.DeleteUnreferencedAsync(db, hooked, [sha256], CancellationToken.None);
            });
            await Task.WhenAny(racingDelete, Task.Delay(TimeSpan.FromSeconds(3)));
        };

        using var form = new MultipartFormDataContent { { new StringContent("The file."), "text" } };
        form.Add(new ByteArrayContent(pdf), "files", "file.pdf");
        var response = await agent.PostAsync($"/api/v1/tickets/{number}/reply", form);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var replyId = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        Assert.NotNull(racingDelete);
        Assert.Equal(0, await racingDelete!);
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(pdf));
        await using (var stream = hooked.Open(sha))
            Assert.NotNull(stream);
        await Eventually.WaitForAsync(() => app.QueryAsync(db => db.Messages.Where(m => m.Id == replyId).Select(m => m.Delivery).SingleAsync()),
            d => d == DeliveryStatus.Sent, TimeSpan.FromSeconds(60), "the reply sent with its file");
    }

    // EM3: a reply whose new file is still being written does not hold the process-wide blob gate: another reply with
    // files, on another ticket, goes through meanwhile, and the gate is free for deleters.
    [Fact]
    public async Task A_reply_writing_its_files_does_not_hold_up_other_replies_with_files()
    {
        var hooked = new HookedBlobStore();
        await using var app = new CrmApp(_data.Path, EmailSettings, services: s => s.AddSingleton<IBlobStore>(sp =>
        {
            hooked.Inner = ActivatorUtilities.CreateInstance<FileBlobStore>(sp);
            return hooked;
        }));
        await AddChannelAsync(app);
        var slowTicket = await TicketAsync(app, "slow-put@customer.example.test");
        var otherTicket = await TicketAsync(app, "other-put@customer.example.test");
        using var agent = await app.AgentAsync();
        var writing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        hooked.BeforePut = async () =>
        {
            writing.TrySetResult();
            await release.Task;
        };

        async Task<HttpResponseMessage> PostFileAsync(long number, int seed)
        {
            using var form = new MultipartFormDataContent { { new StringContent("The file."), "text" } };
            form.Add(new ByteArrayContent(Pdf(200_000, seed)), "files", "file.pdf");
            return await agent.PostAsync($"/api/v1/tickets/{number}/reply", form);
        }

        var slow = PostFileAsync(slowTicket, 11);
        await writing.Task.WaitAsync(TimeSpan.FromSeconds(60));
        try
        {
            var other = await PostFileAsync(otherTicket, 12).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(HttpStatusCode.Created, other.StatusCode);
            Assert.Equal(1, BlobGate.Semaphore.CurrentCount);
        }
        finally
        {
            release.TrySetResult();
        }
        Assert.Equal(HttpStatusCode.Created, (await slow).StatusCode);
    }

    private sealed class HookedBlobStore : IBlobStore
    {
        public IBlobStore Inner { get; set; } = null!;

        public Func<string, Task>? AfterPut { get; set; }

        /// <summary>Puts that pass before <see cref="AfterPut"/> runs (a reply's ungated first put of its files).</summary>
        public int SkipPuts { get; set; }

        /// <summary>Runs once, before the first put, with the put waiting for it.</summary>
        public Func<Task>? BeforePut { get; set; }

        public async Task<StoredBlob> PutAsync(ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
        {
            if (BeforePut is { } before)
            {
                BeforePut = null;
                await before();
            }
            var blob = await Inner.PutAsync(content, cancellationToken);
            if (SkipPuts > 0)
            {
                SkipPuts--;
                return blob;
            }
            if (AfterPut is { } hook)
            {
                AfterPut = null;
                await hook(blob.Sha256);
            }
            return blob;
        }

        public Stream? Open(string sha256) => Inner.Open(sha256);

        public bool Delete(string sha256) => Inner.Delete(sha256);

        public IEnumerable<(string Sha256, DateTimeOffset WrittenAt)> List() => Inner.List();
    }
}
