using System.Net.Http.Json;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using MailKit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Crm.Service.Tests.Email;

/// <summary>A store failure in the middle of a batch: nothing is acknowledged before it is stored, nothing is lost or doubled.</summary>
public sealed class EmailRecoveryTests : IAsyncLifetime
{
    private const int Mails = 12;
    private readonly TempDirectory _data = new();
    private MailServer _mail = null!;
    private CrmApp _app = null!;
    private FailingHandOff _handOff = null!;

    /// <summary>Fails the <see cref="FailAt"/>th hand-off once (a transient store failure) and, at that moment, records
    /// which mails the server already has flagged \Seen.</summary>
    private sealed class FailingHandOff(IInboundHandOff inner, Func<Task> atFailure) : IInboundHandOff
    {
        private int _calls;

        public int FailAt { get; init; }

        public int Calls => _calls;

        public async Task<IngestResult> HandOffAsync(InboundMessage message, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Increment(ref _calls) == FailAt)
            {
                await atFailure();
                throw new IOException("disk I/O error (injected)");
            }
            return await inner.HandOffAsync(message, cancellationToken);
        }
    }

    private readonly List<(string MessageId, bool Seen)> _flagsAtFailure = [];

    public async Task InitializeAsync()
    {
        _mail = await MailServer.StartAsync();
        for (var i = 1; i <= Mails; i++)
        {
            var message = new MimeMessage { MessageId = $"batch-{i}@customer.example.test", Subject = $"Mail {i}" };
            message.From.Add(new MailboxAddress("Carol", MailServer.Customer));
            message.To.Add(new MailboxAddress("", MailServer.Support));
            message.Body = new TextPart("plain") { Text = $"Number {i}" };
            await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(message));
        }
        _app = new CrmApp(_data.Path, new Dictionary<string, string?>
        {
            ["Channels:Email:BatchSize"] = "5",
            ["Channels:Email:FirstReconnectDelay"] = "00:00:00.200",
            ["Channels:Email:MaxReconnectDelay"] = "00:00:01",
        }, services: services => services.AddSingleton<IInboundHandOff>(provider =>
            _handOff = new FailingHandOff(ActivatorUtilities.CreateInstance<ConversationHandOff>(provider), RecordFlagsAsync) { FailAt = 7 }));
        using var admin = _app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() })).EnsureSuccessStatusCode();
    }

    private async Task RecordFlagsAsync()
    {
        foreach (var (_, flags, message) in await _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword))
            _flagsAtFailure.Add((message.MessageId!, flags.HasFlag(MessageFlags.Seen)));
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _mail.DisposeAsync();
        _data.Dispose();
    }

    [Fact]
    public async Task A_failure_mid_batch_acknowledges_nothing_unstored_and_after_recovery_every_mail_is_stored_once()
    {
        var stored = await Eventually.WaitForAsync(
            () => _app.QueryAsync(db => db.Messages.AsNoTracking().Where(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound).Select(m => m.ExternalId!).ToListAsync()),
            ids => ids.Count >= Mails, what: "all mails stored");
        var inbox = await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword),
            m => m.All(x => x.Flags.HasFlag(MessageFlags.Seen)), what: "all mails \\Seen");

        Assert.True(_handOff.Calls > Mails, "the injected failure never happened");
        Assert.Equal(Mails, stored.Count);
        Assert.Equal(Mails, stored.Distinct().Count());
        Assert.Equal(Mails, inbox.Count);
        // When the store failed (the 7th mail, inside the second batch), only the first batch was acknowledged.
        Assert.Equal(Mails, _flagsAtFailure.Count);
        Assert.Equal(Enumerable.Range(1, 5).Select(i => $"batch-{i}@customer.example.test"), _flagsAtFailure.Where(f => f.Seen).Select(f => f.MessageId).Order(StringComparer.Ordinal));
    }
}
