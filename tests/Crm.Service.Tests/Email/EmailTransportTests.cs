using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using MailKit;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>How the reader talks to the real Dovecot: polling when IDLE is turned off, and a connection cut in the
/// middle of a batch (through <see cref="TcpRelay"/>) losing and doubling nothing.</summary>
public sealed class EmailTransportTests : MailServerTests
{
    private CrmApp App(Dictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
            ["Channels:Email:PollInterval"] = "00:00:01",
        };
        foreach (var (key, value) in extra ?? [])
            settings[key] = value;
        return new CrmApp(_data.Path, settings);
    }

    private async Task PutAccountAsync(CrmApp app, int imapPort, bool idle)
    {
        var settings = JsonSerializer.SerializeToNode(_mail.ChannelSettings(imapPort: imapPort))!.AsObject();
        settings["imap"]!["idle"] = idle;
        using var admin = app.Admin();
        var response = await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    private static Task<List<Crm.Service.Grains.Records.MessageRecord>> InboundAsync(CrmApp app, int count) => Eventually.WaitForAsync(
        () => app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound).ToListAsync()),
        m => m.Count >= count, TimeSpan.FromSeconds(90), $"{count} inbound messages");

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task With_idle_off_the_reader_polls_and_never_idles(bool idle)
    {
        await using var relay = new TcpRelay(_mail.ImapPort);
        await using var app = App();
        await PutAccountAsync(app, relay.Port, idle);
        await _mail.SendAsync(EmailReviewTests.Mail("poll-1@customer.test", "One"));
        await InboundAsync(app, 1);
        // A mail arriving after the first round is found too (by the next poll, or by IDLE).
        await _mail.SendAsync(EmailReviewTests.Mail("poll-2@customer.test", "Two"));
        await InboundAsync(app, 2);
        if (idle)
            // The reader may have found poll-2 in its round before it idled; it idles right after.
            await Eventually.WaitForAsync(() => Task.FromResult(relay.Uploaded), u => u.Contains(" IDLE\r\n", StringComparison.Ordinal), what: "the reader idles");
        else
        {
            Assert.DoesNotContain(" IDLE\r\n", relay.Uploaded);
            Assert.Contains(" NOOP\r\n", relay.Uploaded);
        }
    }

    [Fact]
    public async Task A_connection_cut_in_the_middle_of_a_batch_loses_and_doubles_nothing()
    {
        const int mails = 30;
        for (var i = 1; i <= mails; i++)
        {
            var message = EmailReviewTests.Mail($"cut-{i}@customer.test", $"Mail {i}", from: $"sender{i % 7}@customer.test", text: $"Number {i} " + new string('x', 4000));
            await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(message));
        }
        await using var relay = new TcpRelay(_mail.ImapPort) { CutAfterDownloaded = 60_000 };
        await using var app = App(new() { ["Channels:Email:BatchSize"] = "10" });
        await PutAccountAsync(app, relay.Port, idle: true);

        var stored = await InboundAsync(app, mails);
        Assert.True(relay.Cuts >= 1, "the relay cut the connection");
        Assert.Equal(mails, stored.Count);
        Assert.Equal(mails, stored.Select(m => m.ExternalId).Distinct().Count());
        Assert.Equal(Enumerable.Range(1, mails).Select(i => $"Mail {i}").Order(), stored.Select(m => m.Subject!).Order());
        var inbox = await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword),
            m => m.All(x => x.Flags.HasFlag(MessageFlags.Seen)), what: "every mail \\Seen");
        Assert.Equal(mails, inbox.Count);
        // Settled: nothing arrives later either.
        Assert.Equal(mails, await app.QueryAsync(db => db.Messages.CountAsync(m => m.Direction == MessageDirection.Inbound)));
    }
}
