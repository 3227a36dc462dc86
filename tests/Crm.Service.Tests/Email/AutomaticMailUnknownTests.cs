using System.Net.Http.Json;
using Crm.Connectors.Abstractions;
using Crm.Service.Infrastructure.Mailboxes;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>Brief email7 item 6: an automatic mail (the acknowledgement) whose SMTP answer was lost after the whole mail
/// and its final dot were sent is "not confirmed": neither resent nor marked failed as if it never left.</summary>
public sealed class AutomaticMailUnknownTests : MailServerTests
{
    [Fact]
    public async Task An_acknowledgement_whose_answer_is_lost_after_the_final_dot_is_not_confirmed_and_not_resent()
    {
        await using var smtp = new FakeSmtpServer { HoldDataReply = false, DropAfterData = true };
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
            ["Channels:Email:PollInterval"] = "00:00:01",
        });
        var settings = new
        {
            address = MailServer.Support,
            displayName = "Example Support",
            imap = new { host = "127.0.0.1", port = _mail.ImapPort, security = "none", user = MailServer.Support, password = MailServer.SupportPassword, folder = "INBOX", afterProcessing = "seen" },
            smtp = new { host = "127.0.0.1", port = smtp.Port, security = "none", user = MailServer.Support, password = MailServer.SupportPassword },
            autoAcknowledgement = new { enabled = true, language = "en" },
        };
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings })).EnsureSuccessStatusCode();

        var message = new MimeMessage { MessageId = "ack-lost@customer.example.test", Subject = "My order" };
        message.From.Add(new MailboxAddress("Carol Customer", MailServer.Customer));
        message.To.Add(new MailboxAddress("Support", MailServer.Support));
        message.Body = new TextPart("plain") { Text = "Where is it?" };
        await _mail.SendAsync(message);

        var row = await Eventually.WaitForAsync(
            () => app.QueryAsync(db => db.AutomaticMail.AsNoTracking().FirstOrDefaultAsync()),
            r => r is { State: not (AutomaticMailRecord.Pending or AutomaticMailRecord.Sending) }, TimeSpan.FromSeconds(60), "the acknowledgement settled");
        Assert.Equal(AutomaticMailRecord.Unconfirmed, row!.State);
        Assert.StartsWith("Not confirmed: ", row.Error);
        Assert.Contains("may have been delivered", row.Error);
        Assert.Equal(1, row.Attempts);
        Assert.Equal(1, smtp.Received);
    }

    /// <summary>The store as a process killed right after the send leaves it: every write but the completion lands; the
    /// completion never returns (until the host stops, so the test's app can be disposed).</summary>
    private sealed class KilledBeforeCompletion(IAutomaticMailStore inner, IHostApplicationLifetime lifetime) : IAutomaticMailStore
    {
        public Task<AutomaticMailClaim> ClaimAsync(AutomaticMail mail, int maxPerRecipient, int maxPerAccount, TimeSpan window, CancellationToken cancellationToken = default) =>
            inner.ClaimAsync(mail, maxPerRecipient, maxPerAccount, window, cancellationToken);
        public Task<IReadOnlyList<AutomaticMail>> DueAsync(DateTimeOffset now, int max, CancellationToken cancellationToken = default) => inner.DueAsync(now, max, cancellationToken);
        public Task MarkInFlightAsync(Guid id, CancellationToken cancellationToken = default) => inner.MarkInFlightAsync(id, cancellationToken);
        public Task CompleteAsync(Guid id, string? error, DateTimeOffset? retryAt, DateTimeOffset now, CancellationToken cancellationToken = default, bool unconfirmed = false) =>
            Task.Delay(Timeout.Infinite, lifetime.ApplicationStopping);
    }

    [Fact]
    public async Task An_acknowledgement_sent_just_before_a_kill_is_settled_as_not_confirmed_by_the_next_sender_and_never_resent()
    {
        // Review EM7 EN2: the outcome of the send is never recorded (the process dies after the final dot), and the
        // next start of the service must not mail the customer a second acknowledgement.
        await using var smtp = new FakeSmtpServer { HoldDataReply = false };
        var settingsOf = new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
            ["Channels:Email:PollInterval"] = "00:00:01",
        };
        await using (var app = new CrmApp(_data.Path, settingsOf, services: s => s.AddSingleton<IAutomaticMailStore>(sp =>
            new KilledBeforeCompletion(sp.GetRequiredService<SqliteMailboxStore>(), sp.GetRequiredService<IHostApplicationLifetime>()))))
        {
            var settings = new
            {
                address = MailServer.Support,
                displayName = "Example Support",
                imap = new { host = "127.0.0.1", port = _mail.ImapPort, security = "none", user = MailServer.Support, password = MailServer.SupportPassword, folder = "INBOX", afterProcessing = "seen" },
                smtp = new { host = "127.0.0.1", port = smtp.Port, security = "none", user = MailServer.Support, password = MailServer.SupportPassword },
                autoAcknowledgement = new { enabled = true, language = "en" },
            };
            using (var admin = app.Admin())
                (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings })).EnsureSuccessStatusCode();
            var message = new MimeMessage { MessageId = "ack-killed@customer.example.test", Subject = "My order" };
            message.From.Add(new MailboxAddress("Carol Customer", MailServer.Customer));
            message.To.Add(new MailboxAddress("Support", MailServer.Support));
            message.Body = new TextPart("plain") { Text = "Where is it?" };
            await _mail.SendAsync(message);
            await smtp.FirstDataReceived.WaitAsync(TimeSpan.FromSeconds(60));
        }

        await using var restarted = new CrmApp(_data.Path, settingsOf);
        var row = await Eventually.WaitForAsync(
            () => restarted.QueryAsync(db => db.AutomaticMail.AsNoTracking().FirstOrDefaultAsync()),
            r => r is { State: AutomaticMailRecord.Unconfirmed or AutomaticMailRecord.Sent or AutomaticMailRecord.Failed }, TimeSpan.FromSeconds(60), "the acknowledgement settled");
        Assert.Equal(AutomaticMailRecord.Unconfirmed, row!.State);
        Assert.StartsWith("Not confirmed: ", row.Error);
        Assert.Equal(1, smtp.Received);
    }
}
