using System.Net.Http.Json;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Email;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Email;

/// <summary>One IMAP reader per mailbox across nodes: two app hosts (each its own silo) on one store and one Dovecot.
/// The reader runs under the connector lease "email-reader:{account}"; the other node takes over when the first
/// stops, and nothing is lost or stored twice.</summary>
public sealed class EmailLeaseTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private readonly TempDirectory _secondSearch = new();
    private MailServer _mail = null!;

    public async Task InitializeAsync() => _mail = await MailServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _mail.DisposeAsync();
        _secondSearch.Dispose();
        _data.Dispose();
    }

    private CrmApp Node(string? search = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
            // Long enough that a loaded box's stall never drops a renewal: the handover here comes from the release.
            ["Connectors:Leases:Duration"] = "00:00:30",
            ["Connectors:Leases:RetryInterval"] = "00:00:00.200",
        };
        if (search is not null)
        {
            // Both Lucene indexes (articles, records) of the second node are its own: an index has one writer.
            settings["Search:LuceneDirectory"] = Path.Combine(search, "search");
            settings["Search:RecordsLuceneDirectory"] = Path.Combine(search, "search-records");
        }
        return new CrmApp(_data.Path, settings);
    }

    private static Task<List<string>> InboundIdsAsync(CrmApp app) => app.QueryAsync(db => db.Messages.AsNoTracking()
        .Where(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound).Select(m => m.ExternalId!).ToListAsync());

    private static async Task<List<string>> StoredAsync(CrmApp app, int count) =>
        await Eventually.WaitForAsync(() => InboundIdsAsync(app), ids => ids.Count >= count, TimeSpan.FromSeconds(90), $"{count} mails stored");

    [Fact]
    public async Task Two_nodes_one_reader_per_mailbox_and_the_other_takes_over_when_it_stops_without_loss_or_duplicates()
    {
        var key = ImapMailboxSupervisor.LeaseKey("support");
        Assert.Equal("email-reader:support", key);
        var a = Node();
        await using var aLife = a;
        using (var admin = a.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() })).EnsureSuccessStatusCode();
        for (var i = 1; i <= 3; i++)
            await _mail.SendAsync(EmailReviewTests.Mail($"lease-{i}@customer.test", $"Lease {i}"));
        await StoredAsync(a, 3);

        await using var b = Node(_secondSearch.Path);
        var leasesA = a.Services.GetRequiredService<ConnectorLeases>();
        var leasesB = b.Services.GetRequiredService<ConnectorLeases>();
        // Node B runs the account's loop, but waits for the lease: one reader.
        await Eventually.WaitForAsync(() => Task.FromResult(b.Services.GetRequiredService<ImapMailboxSupervisor>().IsRunning("support")), r => r, TimeSpan.FromSeconds(60), "node B's loop for the mailbox");
        Assert.True(leasesA.Holds(key));
        for (var i = 4; i <= 6; i++)
            await _mail.SendAsync(EmailReviewTests.Mail($"lease-{i}@customer.test", $"Lease {i}"));
        await StoredAsync(a, 6);
        Assert.True(leasesA.Holds(key));
        Assert.False(leasesB.Holds(key));
        // Another kind of work on the same account id is a different lease.
        Assert.False(leasesA.Holds("support"));

        // Node A stops (a deploy): it releases the lease and node B reads on.
        await a.DisposeAsync();
        await Eventually.WaitForAsync(() => Task.FromResult(leasesB.Holds(key)), held => held, TimeSpan.FromSeconds(60), "node B takes the lease");
        // Replies on the first ticket: two app hosts here are two one-silo clusters on one store, not one cluster, and
        // node B's ticket-number allocator would not know the numbers node A handed out (one cluster has one allocator).
        for (var i = 7; i <= 9; i++)
        {
            var reply = EmailReviewTests.Mail($"lease-{i}@customer.test", $"Re: Lease 1");
            reply.InReplyTo = "lease-1@customer.test";
            await _mail.SendAsync(reply);
        }
        List<string> ids;
        try
        {
            ids = await StoredAsync(b, 9);
        }
        catch (TimeoutException)
        {
            using var view = b.Admin();
            var health = await view.GetStringAsync("/api/v1/admin/channels/support");
            var server = await _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword);
            var quarantine = await view.GetStringAsync("/api/v1/admin/channels/support/quarantine");
            var cursor = await b.QueryAsync(db => db.MailboxCursors.AsNoTracking().ToListAsync());
            Assert.Fail($"stored {string.Join(", ", await InboundIdsAsync(b))}; inbox {string.Join(", ", server.Select(m => $"{m.Uid}:{m.Message.MessageId}:{m.Flags}"))}; quarantine {quarantine}; cursor {string.Join(", ", cursor.Select(c => $"{c.Folder} {c.UidValidity} {c.LastUid}"))}; B running {b.Services.GetRequiredService<ImapMailboxSupervisor>().IsRunning("support")}");
            throw;
        }
        Assert.Equal(9, ids.Count);
        Assert.Equal(Enumerable.Range(1, 9).Select(i => $"lease-{i}@customer.test").Order(StringComparer.Ordinal),
            ids.Select(id => EmailIds.MessageIdOf(id)!).Order(StringComparer.Ordinal));
        // Every mail is acknowledged on the server (seen) exactly as the one reader left it.
        var inbox = await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword),
            m => m.All(x => x.Flags.HasFlag(MailKit.MessageFlags.Seen)), TimeSpan.FromSeconds(60), "all mails seen");
        Assert.Equal(9, inbox.Count);
    }

    [Fact]
    public async Task One_node_of_the_cluster_sends_the_automatic_mail_and_another_takes_over_when_it_stops()
    {
        // Every node sees the same queue of acknowledgements: two senders would each send a due row before either
        // marked it, so the customer would get it twice.
        var a = Node();
        await using var aLife = a;
        var leasesA = a.Services.GetRequiredService<ConnectorLeases>();
        await Eventually.WaitForAsync(() => Task.FromResult(leasesA.Holds(AutomaticMailSender.LeaseKey)), held => held, TimeSpan.FromSeconds(60), "node A's sender holds the lease");

        await using var b = Node(_secondSearch.Path);
        var leasesB = b.Services.GetRequiredService<ConnectorLeases>();
        // Node B asks every 200 ms and is refused while A holds it: for a while, never both.
        for (var i = 0; i < 20; i++)
        {
            Assert.False(leasesB.Holds(AutomaticMailSender.LeaseKey), "both nodes send the automatic mail");
            await Task.Delay(100);
        }
        Assert.True(leasesA.Holds(AutomaticMailSender.LeaseKey));

        await a.DisposeAsync();
        await Eventually.WaitForAsync(() => Task.FromResult(leasesB.Holds(AutomaticMailSender.LeaseKey)), held => held, TimeSpan.FromSeconds(60), "node B's sender takes the lease");
    }
}
