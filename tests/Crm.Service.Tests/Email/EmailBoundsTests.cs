using System.Net.Http.Json;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Email;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Mailboxes;
using Crm.Service.Tests.Support;
using MailKit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Email;

/// <summary>The open low/medium findings of the email review (review/email.md F9, F10, F12): memory per batch, subject
/// tag lookups and the cursor's server identity, each against the real Dovecot/Postfix fixture and the real store.</summary>
public sealed class EmailBoundsTests : MailServerTests
{
    /// <summary>Counts the subject-tag lookups the ingest makes against the real store.</summary>
    private sealed class CountingLookup(IConversationLookup inner) : IConversationLookup
    {
        public int TicketQueries;
        public int MostNumbersInOneQuery;

        public Task<ThreadMatch?> FindByMessagesAsync(string channelAccountId, IReadOnlyCollection<string> inboundExternalIds, IReadOnlyCollection<Guid> outboundMessageIds, CancellationToken cancellationToken = default) =>
            inner.FindByMessagesAsync(channelAccountId, inboundExternalIds, outboundMessageIds, cancellationToken);

        public Task<IReadOnlyList<ThreadMatch>> FindByTicketsAsync(string channelAccountId, IReadOnlyCollection<long> ticketNumbers, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref TicketQueries);
            MostNumbersInOneQuery = Math.Max(MostNumbersInOneQuery, ticketNumbers.Count);
            return inner.FindByTicketsAsync(channelAccountId, ticketNumbers, cancellationToken);
        }

        public Task<ThreadHistory> HistoryAsync(string channelAccountId, string threadKey, int max = 50, CancellationToken cancellationToken = default) =>
            inner.HistoryAsync(channelAccountId, threadKey, max, cancellationToken);

        public Task<bool> IsOutboundAsync(string channelAccountId, Guid messageId, CancellationToken cancellationToken = default) =>
            inner.IsOutboundAsync(channelAccountId, messageId, cancellationToken);
    }

    private CrmApp App(Dictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null)
    {
        var all = new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.100",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:00.500",
        };
        foreach (var (key, value) in settings ?? [])
            all[key] = value;
        return new CrmApp(_data.Path, all, services: services);
    }

    private static async Task PutAccountAsync(CrmApp app, object settings)
    {
        using var admin = app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings })).EnsureSuccessStatusCode();
    }

    private static Task<List<Crm.Service.Grains.Records.MessageRecord>> InboundAsync(CrmApp app, int count) => Eventually.WaitForAsync(
        () => app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound).OrderBy(m => m.CreatedAt).ToListAsync()),
        m => m.Count >= count, what: $"{count} inbound messages");

    /// <summary>F9: sizes are fetched first; a mail over the limit is never downloaded (only its header), flagged to the
    /// agent, acknowledged, and the mail behind it is read.</summary>
    [Fact]
    public async Task F9_a_mail_over_the_size_limit_is_not_downloaded_only_its_header()
    {
        await using var relay = new TcpRelay(_mail.ImapPort);
        var big = "From: Carol <carol@customer.test>\r\nTo: support@example.test\r\nSubject: big attachment\r\nMessage-ID: <big@customer.test>\r\n\r\n"
            + string.Concat(Enumerable.Repeat(new string('x', 998) + "\r\n", 5 * 1024)) ;
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, System.Text.Encoding.ASCII.GetBytes(big));
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(EmailReviewTests.Mail("small@customer.test", "Small")));

        await using var app = App(new() { ["Channels:Email:BatchSize"] = "5", ["Channels:Email:MaxMessageBytes"] = "65536" });
        await PutAccountAsync(app, _mail.ChannelSettings(imapPort: relay.Port));

        var stored = await InboundAsync(app, 2);
        var flagged = Assert.Single(stored, m => m.Subject == "big attachment");
        Assert.Contains("stays on the mail server", flagged.Text);
        Assert.Contains(stored, m => m.Subject == "Small");
        var raw = await app.QueryAsync(db => db.RawSources.Where(r => r.MessageId == flagged.Id).Select(r => new { r.Length, r.ContentType }).SingleAsync());
        Assert.Equal("text/rfc822-headers", raw.ContentType);
        Assert.True(raw.Length < 1024, $"kept {raw.Length} bytes of header");
        await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword), m => m.Count == 2 && m.All(x => x.Flags.HasFlag(MessageFlags.Seen)), what: "both \\Seen");
        // The 5 MB body never crossed the wire (the test's own reads above go to the server directly, not through the relay).
        Assert.True(relay.Downloaded < 1024 * 1024, $"the reader downloaded {relay.Downloaded} bytes");
    }

    /// <summary>F9: batches are cut by bytes as well as by count (sizes known before the bodies are fetched).</summary>
    [Fact]
    public void F9_batches_are_bounded_by_bytes_and_an_oversize_mail_counts_as_its_header()
    {
        var sizes = new Dictionary<uint, long> { [1] = 400, [2] = 400, [3] = 400, [4] = 5_000_000, [5] = 100, [6] = 900 };
        var batches = MailBatches.Split([1, 2, 3, 4, 5, 6, 7], sizes, maxCount: 50, maxBytes: 1000, maxMessageBytes: 1000).Select(b => b.ToArray()).ToList();
        // 7 has no size (expunged): it rides along without cost; 4 is over the limit and is not downloaded.
        Assert.Equal([[1u, 2u], [3u, 4u, 5u], [6u, 7u]], batches);
        Assert.Equal([[1u, 2u], [3u, 4u], [5u, 6u], [7u]], MailBatches.Split([1, 2, 3, 4, 5, 6, 7], sizes, 2, 1_000_000, 1000).Select(b => b.ToArray()).ToList());
    }

    /// <summary>F10: a subject of 10,000 tags costs one lookup of at most three ticket numbers, and the first tag still threads.</summary>
    [Fact]
    public async Task F10_a_subject_with_ten_thousand_tags_costs_one_bounded_lookup()
    {
        CountingLookup lookup = null!;
        await using var app = App(services: services => services.AddSingleton<IConversationLookup>(provider =>
            lookup = new CountingLookup(provider.GetRequiredService<SqliteMailboxStore>())));
        await PutAccountAsync(app, _mail.ChannelSettings());
        await _mail.SendAsync(EmailReviewTests.Mail("first@customer.test", "Printer"));
        var ticket = (await InboundAsync(app, 1))[0].TicketNumber;
        var queriesBefore = lookup.TicketQueries;

        var subject = $"Re: [#{ticket}] " + string.Concat(Enumerable.Repeat("[#1]", 10_000));
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(EmailReviewTests.Mail("tags@customer.test", subject)));

        var stored = await InboundAsync(app, 2);
        Assert.Equal(ticket, stored[1].TicketNumber);
        Assert.Equal(1, lookup.TicketQueries - queriesBefore);
        Assert.InRange(lookup.MostNumbersInOneQuery, 1, EmailIds.MaxTicketTags);
    }

    [Fact]
    public void F10_ticket_numbers_are_the_first_few_distinct_tags_of_the_subject_start()
    {
        Assert.Equal([7L, 1L, 2L], EmailIds.TicketNumbers("[#7] [#7] [#1] [#2] [#3]"));
        Assert.Empty(EmailIds.TicketNumbers(new string('a', EmailIds.TicketTagScanLength) + "[#5]"));
        Assert.Empty(EmailIds.TicketNumbers(null));
    }

    /// <summary>F12: the cursor names the server mailbox; re-pointing the account at another mailbox whose UIDVALIDITY
    /// happens to equal the old one (Dovecot: mailboxes created in the same second) reads all of its mail.</summary>
    [Fact]
    public async Task F12_repointing_an_account_at_another_mailbox_with_the_same_uidvalidity_skips_no_mail()
    {
        const string other = "other@example.test", otherPassword = "other-pw";
        await _mail.AddUserAsync(other, otherPassword);
        for (var i = 1; i <= 5; i++)
            await _mail.AppendAsync(other, otherPassword, MimeMappingTests.Bytes(EmailReviewTests.Mail($"other-{i}@customer.test", $"Other {i}")));
        uint uidValidity;
        using (var client = await _mail.LoginAsync(other, otherPassword))
        {
            var inbox = await client.GetFolderAsync("INBOX");
            await inbox.OpenAsync(FolderAccess.ReadOnly);
            uidValidity = inbox.UidValidity;
            await client.DisconnectAsync(true);
        }

        await using var app = App();
        await PutAccountAsync(app, _mail.ChannelSettings());
        // The old mailbox (support@, same host) had the same UIDVALIDITY and was read up to UID 100.
        var oldServer = ImapMailboxReader.ServerIdentity(new ImapSettings { Host = "127.0.0.1", Port = _mail.ImapPort, User = MailServer.Support });
        await app.Services.GetRequiredService<IMailboxStateStore>().SaveCursorAsync("support", "INBOX", new MailboxCursor(uidValidity, 100, oldServer));

        await PutAccountAsync(app, _mail.ChannelSettings(other, otherPassword, address: MailServer.Support));

        var stored = await InboundAsync(app, 5);
        Assert.Equal(Enumerable.Range(1, 5).Select(i => $"Other {i}"), stored.Select(m => m.Subject).Order(StringComparer.Ordinal));
        var cursor = await app.Services.GetRequiredService<IMailboxStateStore>().GetCursorAsync("support", "INBOX");
        Assert.Equal(ImapMailboxReader.ServerIdentity(new ImapSettings { Host = "127.0.0.1", Port = _mail.ImapPort, User = other }), cursor!.Server);
    }
}
