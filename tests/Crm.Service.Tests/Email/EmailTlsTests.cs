using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Email;

/// <summary>STARTTLS and TLS-on-connect to the real Dovecot/Postfix with their self-signed certificate: trusted only
/// when the account pins its fingerprint; validation is never switched off.</summary>
public sealed class EmailTlsTests : MailServerTests
{
    private object Settings(string security, int imapPort, int smtpPort, string? fingerprint) => new
    {
        address = MailServer.Support,
        displayName = "Example Support",
        imap = new { host = "127.0.0.1", port = imapPort, security, user = MailServer.Support, password = MailServer.SupportPassword, trustedCertificate = fingerprint },
        smtp = new { host = "127.0.0.1", port = smtpPort, security, user = MailServer.Support, password = MailServer.SupportPassword, trustedCertificate = fingerprint },
    };

    [Fact]
    public async Task Mail_is_read_over_starttls_with_a_pinned_self_signed_certificate()
    {
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?> { ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200", ["Channels:Email:MaxReconnectDelay"] = "00:00:01" });
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = Settings("starttls", _mail.ImapPort, _mail.SmtpPort, _mail.CertificateFingerprint) })).EnsureSuccessStatusCode();
        await _mail.SendAsync(EmailReviewTests.Mail("tls-s@customer.test", "Over STARTTLS"));
        await Eventually.WaitForAsync(() => app.QueryAsync(db => db.Messages.AsNoTracking().SingleOrDefaultAsync(m => m.Subject == "Over STARTTLS")), m => m is not null, what: "the mail read over STARTTLS");
    }

    /// <summary>Reading and replying over TLS on connect (IMAPS, SMTPS) and over STARTTLS. The replies once did not arrive:
    /// the fixture's Postfix had no tlsmgr service, so its smtpd logged "no entropy for TLS key generation: disabling TLS
    /// support" and answered STARTTLS with 454 and SMTPS with a reset (the outbox retried for ever).</summary>
    [Theory]
    [InlineData("ssl")]
    [InlineData("starttls")]
    public async Task Mail_is_read_and_replies_sent_over_tls_with_a_pinned_self_signed_certificate(string security)
    {
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?> { ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200", ["Channels:Email:MaxReconnectDelay"] = "00:00:01" });
        var (imapPort, smtpPort) = security == "ssl" ? (_mail.ImapsPort, _mail.SmtpsPort) : (_mail.ImapPort, _mail.SmtpPort);
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = Settings(security, imapPort, smtpPort, _mail.CertificateFingerprint.ToLowerInvariant()) })).EnsureSuccessStatusCode();

        await _mail.SendAsync(EmailReviewTests.Mail("tls-1@customer.test", "Over TLS"));
        var stored = await Eventually.WaitForAsync(() => app.QueryAsync(db => db.Messages.AsNoTracking().SingleOrDefaultAsync(m => m.Subject == "Over TLS")), m => m is not null, TimeSpan.FromSeconds(90), "the mail read over TLS");
        using var agent = await app.AgentAsync();
        var reply = await agent.PostAsJsonAsync($"/api/v1/tickets/{stored!.TicketNumber}/reply", new { text = "Sent over TLS." });
        Assert.Equal(HttpStatusCode.Created, reply.StatusCode);
        var received = await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Customer, MailServer.CustomerPassword), m => m.Count == 1, TimeSpan.FromSeconds(90), "the reply sent over TLS");
        Assert.Contains("Sent over TLS.", received[0].Message.TextBody);
    }

    [Fact]
    public async Task Without_the_pin_the_self_signed_certificate_is_refused_and_the_account_says_why()
    {
        await using var app = new CrmApp(_data.Path, new Dictionary<string, string?> { ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200", ["Channels:Email:MaxReconnectDelay"] = "00:00:01" });
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = Settings("ssl", _mail.ImapsPort, _mail.SmtpsPort, new string('0', 64)) })).EnsureSuccessStatusCode();
        await _mail.SendAsync(EmailReviewTests.Mail("tls-2@customer.test", "Not read"));
        using var view = app.Admin();
        var account = await Eventually.WaitForAsync(() => view.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/support"),
            a => a.TryGetProperty("lastError", out var e) && e.ValueKind == JsonValueKind.String, what: "the TLS error on the account");
        Assert.Contains("TLS", account.GetProperty("lastError").GetString());
        Assert.Equal(0, await app.QueryAsync(db => db.Messages.CountAsync()));
    }
}
