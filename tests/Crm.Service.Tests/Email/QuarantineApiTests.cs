using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.Abstractions;
using Crm.Connectors.Email;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;
using MailKit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Email;

/// <summary>The quarantine admin API (list, raw, retry, delete), its retention and the mailbox health, against the
/// real app, store and Dovecot/Postfix fixture.</summary>
public sealed class QuarantineApiTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private MailServer _mail = null!;
    private CrmApp _app = null!;
    private bool _refuse = true;

    /// <summary>Refuses the hand-off of mails whose subject starts with "Refuse" while <see cref="_refuse"/> is set, as
    /// the core refuses content it cannot take (a deterministic refusal: the mail is quarantined).</summary>
    private sealed class RefusingHandOff(IInboundHandOff inner, Func<bool> refuse) : IInboundHandOff
    {
        public Task<IngestResult> HandOffAsync(InboundMessage message, CancellationToken cancellationToken = default) =>
            refuse() && message.Subject?.StartsWith("Refuse", StringComparison.Ordinal) == true
                ? throw new DomainException(DomainErrorKind.Invalid, "the text is refused (test)", "text")
                : inner.HandOffAsync(message, cancellationToken);
    }

    public async Task InitializeAsync()
    {
        _mail = await MailServer.StartAsync();
        _app = new CrmApp(_data.Path, services: services => services.AddSingleton<IInboundHandOff>(provider =>
            new RefusingHandOff(ActivatorUtilities.CreateInstance<ConversationHandOff>(provider), () => _refuse)));
        using var admin = _app.Admin();
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = _mail.ChannelSettings() })).EnsureSuccessStatusCode();
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _mail.DisposeAsync();
        _data.Dispose();
    }

    private async Task<JsonElement> QuarantinedAsync(int count)
    {
        using var admin = _app.Admin();
        return await Eventually.WaitForAsync(() => admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/support/quarantine"),
            page => page.GetProperty("total").GetInt32() >= count, what: $"{count} quarantined");
    }

    private Task<int> InboundCountAsync() =>
        _app.QueryAsync(db => db.Messages.AsNoTracking().CountAsync(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound));

    [Fact]
    public async Task A_refused_mail_is_listed_downloadable_and_retried_once_into_a_ticket()
    {
        var raw = MimeMappingTests.Bytes(EmailReviewTests.Mail("refused@customer.test", "Refuse me", text: "<script>alert(1)</script>"));
        await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, raw);

        var page = await QuarantinedAsync(1);
        var item = Assert.Single(page.GetProperty("items").EnumerateArray());
        var qid = item.GetProperty("id").GetGuid();
        Assert.Contains("the text is refused (test)", item.GetProperty("reason").GetString());
        Assert.True(item.GetProperty("size").GetInt64() > 100);
        Assert.True(item.TryGetProperty("receivedAt", out _));
        // Acknowledged on the server (the raw is kept here), and no ticket.
        await Eventually.WaitForAsync(() => _mail.ReadAsync(MailServer.Support, MailServer.SupportPassword), m => m.Single().Flags.HasFlag(MessageFlags.Seen), what: "\\Seen");
        Assert.Equal(0, await InboundCountAsync());

        using var admin = _app.Admin();
        using (var download = await admin.GetAsync($"/api/v1/admin/channels/support/quarantine/{qid}/raw"))
        {
            Assert.Equal(HttpStatusCode.OK, download.StatusCode);
            Assert.Equal("message/rfc822", download.Content.Headers.ContentType!.MediaType);
            Assert.Equal("attachment", download.Content.Headers.ContentDisposition!.DispositionType);
            Assert.Equal("nosniff", download.Headers.GetValues("X-Content-Type-Options").Single());
            var bytes = await download.Content.ReadAsByteArrayAsync();
            Assert.Equal(item.GetProperty("size").GetInt64(), bytes.LongLength);
            Assert.Contains("Message-Id: <refused@customer.test>", System.Text.Encoding.ASCII.GetString(bytes), StringComparison.OrdinalIgnoreCase);
        }

        // Still refused: 422 with the reason, the entry kept.
        using (var again = await admin.PostAsync($"/api/v1/admin/channels/support/quarantine/{qid}/retry", null))
        {
            Assert.Equal(HttpStatusCode.UnprocessableEntity, again.StatusCode);
            Assert.Contains("the text is refused", await again.Content.ReadAsStringAsync());
        }
        Assert.Equal(1, (await QuarantinedAsync(1)).GetProperty("total").GetInt32());

        _refuse = false;
        using var retried = await admin.PostAsync($"/api/v1/admin/channels/support/quarantine/{qid}/retry", null);
        Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
        var result = await retried.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("stored", result.GetProperty("outcome").GetString());
        Assert.False(result.GetProperty("duplicate").GetBoolean());
        Assert.Equal(1, await InboundCountAsync());
        var stored = await _app.QueryAsync(db => db.Messages.AsNoTracking().SingleAsync(m => m.ChannelAccountId == "support" && m.Direction == MessageDirection.Inbound));
        Assert.Equal(result.GetProperty("messageId").GetGuid(), stored.Id);

        // Idempotent: the entry is released; a second retry finds nothing and stores nothing.
        using var twice = await admin.PostAsync($"/api/v1/admin/channels/support/quarantine/{qid}/retry", null);
        Assert.Equal(HttpStatusCode.NotFound, twice.StatusCode);
        Assert.Equal(1, await InboundCountAsync());
        Assert.Equal(0, (await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/support/quarantine")).GetProperty("total").GetInt32());

        // The mailbox health names when mail last came in.
        var mailbox = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/support/mailbox");
        Assert.Equal(JsonValueKind.String, mailbox.GetProperty("lastMailReceivedAt").ValueKind);
        Assert.Equal("INBOX", mailbox.GetProperty("folders")[0].GetProperty("folder").GetString());
    }

    [Fact]
    public async Task Entries_are_paged_newest_first_deleted_and_kept_from_agents_and_strangers()
    {
        for (var i = 1; i <= 3; i++)
            await _mail.AppendAsync(MailServer.Support, MailServer.SupportPassword, MimeMappingTests.Bytes(EmailReviewTests.Mail($"r{i}@customer.test", $"Refuse {i}", text: $"Number {i}")));
        await QuarantinedAsync(3);

        using var admin = _app.Admin();
        var first = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/support/quarantine?limit=2");
        var second = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/support/quarantine?limit=2&offset=2");
        Assert.Equal(3, first.GetProperty("total").GetInt32());
        Assert.Equal(2, first.GetProperty("items").GetArrayLength());
        var all = first.GetProperty("items").EnumerateArray().Concat(second.GetProperty("items").EnumerateArray()).ToList();
        Assert.Equal(3, all.Select(i => i.GetProperty("id").GetGuid()).Distinct().Count());
        var times = all.Select(i => i.GetProperty("receivedAt").GetDateTimeOffset()).ToList();
        Assert.Equal(times.OrderDescending(), times);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await admin.GetAsync("/api/v1/admin/channels/support/quarantine?limit=1000")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/admin/channels/nope/quarantine")).StatusCode);

        var victim = all[0].GetProperty("id").GetGuid();
        using var agent = await _app.AgentAsync();
        using var stranger = _app.CreateClient();
        foreach (var client in new[] { agent, stranger })
        {
            Assert.True((await client.GetAsync("/api/v1/admin/channels/support/quarantine")).StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized);
            Assert.True((await client.GetAsync($"/api/v1/admin/channels/support/quarantine/{victim}/raw")).StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized);
            Assert.True((await client.PostAsync($"/api/v1/admin/channels/support/quarantine/{victim}/retry", null)).StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized);
            Assert.True((await client.DeleteAsync($"/api/v1/admin/channels/support/quarantine/{victim}")).StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/admin/channels/support/quarantine/{victim}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.DeleteAsync($"/api/v1/admin/channels/support/quarantine/{victim}")).StatusCode);
        Assert.Equal(2, (await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/support/quarantine")).GetProperty("total").GetInt32());
    }

    /// <summary>The retention loop on a fake clock: entries older than the retention (90 days by default) go, younger ones stay.</summary>
    [Fact]
    public async Task Quarantined_mail_is_pruned_after_the_retention()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var state = _app.Services.GetRequiredService<IMailboxStateStore>();
        await state.QuarantineAsync(new QuarantinedMail("support", "INBOX", 1, 1, "old", "old"u8.ToArray(), clock.GetUtcNow() - TimeSpan.FromDays(91)));
        await state.QuarantineAsync(new QuarantinedMail("support", "INBOX", 1, 2, "young", "young"u8.ToArray(), clock.GetUtcNow() - TimeSpan.FromDays(10)));
        var pruner = ActivatorUtilities.CreateInstance<QuarantinePruner>(_app.Services, clock);
        await pruner.StartAsync(CancellationToken.None);
        try
        {
            using var admin = _app.Admin();
            async Task<List<string>> ReasonsAsync() => [.. (await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/channels/support/quarantine")).GetProperty("items").EnumerateArray().Select(i => i.GetProperty("reason").GetString()!)];
            Assert.Equal(["young"], await Eventually.WaitForAsync(ReasonsAsync, r => !r.Contains("old"), what: "the old entry pruned"));

            clock.Advance(TimeSpan.FromDays(79));
            Assert.Equal(["young"], await ReasonsAsync());
            // Each probe moves the clock on, so the loop's next round comes whenever it started waiting.
            await Eventually.WaitForAsync(() => { clock.Advance(TimeSpan.FromDays(2)); return ReasonsAsync(); }, r => r.Count == 0, what: "the young entry pruned after 90 days");
        }
        finally
        {
            await pruner.StopAsync(CancellationToken.None);
        }
    }
}
