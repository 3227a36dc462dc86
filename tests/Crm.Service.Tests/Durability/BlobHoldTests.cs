using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Documents;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Blobs;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Durability;

/// <summary>Review ER8 across nodes and CT8: durable blob holds (rows in the shared store) keep every node's deleters,
/// the orphan sweep included, off bytes a reply is about to name; the in-process gate alone cannot.</summary>
[Collection(nameof(BlobSweepGateTests))] // the sweep and deletes take the process-wide gate
public sealed class BlobHoldTests
{
    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Runs a hook after every put of the reply's file (its first, ungated one and the re-put under the gate).</summary>
    private sealed class HookedBlobStore : IBlobStore
    {
        public IBlobStore Inner { get; set; } = null!;
        public Func<string, Task>? AfterPut { get; set; }
        public Task<StoredBlob> PutAsync(ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default) => PutThenHookAsync(content, cancellationToken);
        private async Task<StoredBlob> PutThenHookAsync(ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
        {
            var blob = await Inner.PutAsync(content, cancellationToken);
            if (AfterPut is { } hook)
                await hook(blob.Sha256);
            return blob;
        }
        public Stream? Open(string sha256) => Inner.Open(sha256);
        public bool Delete(string sha256) => Inner.Delete(sha256);
        public IEnumerable<(string Sha256, DateTimeOffset WrittenAt)> List() => Inner.List();
        public DateTimeOffset? WrittenAt(string sha256) => Inner.WrittenAt(sha256);
    }

    [Fact]
    public async Task Another_nodes_delete_between_a_replys_puts_and_its_commit_leaves_the_file()
    {
        using var data = new TempDirectory();
        var hooked = new HookedBlobStore();
        await using var app = new CrmApp(data.Path, services: s => s.AddSingleton<IBlobStore>(sp =>
        {
            hooked.Inner = ActivatorUtilities.CreateInstance<FileBlobStore>(sp);
            return hooked;
        }));
        await using var mail = await Email.MailServer.StartAsync();
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = mail.ChannelSettings() })).EnsureSuccessStatusCode();
        var opening = new MimeKit.MimeMessage { MessageId = "hold@customer.example.test", Subject = "Invoice please" };
        opening.From.Add(new MimeKit.MailboxAddress("Carol", Email.MailServer.Customer));
        opening.To.Add(new MimeKit.MailboxAddress("Support", Email.MailServer.Support));
        opening.Body = new MimeKit.TextPart("plain") { Text = "Send me the invoice." };
        await mail.SendAsync(opening);
        var number = await Eventually.WaitForAsync(
            () => app.QueryAsync(db => db.Messages.Where(m => m.ChannelAccountId == "support" && m.ExternalId!.StartsWith("hold@")).Select(m => m.TicketNumber).FirstOrDefaultAsync()),
            n => n > 0, TimeSpan.FromSeconds(60), "the customer's ticket");
        var pdf = new byte[30_000];
        new Random(7).NextBytes(pdf);
        "%PDF-1.4\n"u8.CopyTo(pdf);
        var contexts = app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>();
        var deletes = new List<bool>();
        hooked.AfterPut = async sha256 =>
        {
            // What a deleter on another node does (it shares the store, not this process's gate): check rows, delete.
            await using var db = await contexts.CreateDbContextAsync();
            deletes.Add(await BlobReferences.DeleteIfUnnamedAsync(db, hooked, sha256, null, CancellationToken.None));
        };

        using var agent = await app.AgentAsync();
        using var form = new MultipartFormDataContent { { new StringContent("The file."), "text" } };
        form.Add(new ByteArrayContent(pdf), "files", "file.pdf");
        var response = await agent.PostAsync($"/api/v1/tickets/{number}/reply", form);
        hooked.AfterPut = null;

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.NotEmpty(deletes);
        Assert.All(deletes, Assert.False);
        await using (var stream = hooked.Open(Sha(pdf)))
            Assert.NotNull(stream);
        // The hold is released with the commit: the reply's row names the bytes from then on.
        Assert.Equal(0, await app.QueryAsync(db => db.Set<BlobHoldRecord>().CountAsync()));
        var replyId = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        Assert.Equal(1, await app.QueryAsync(db => db.Attachments.CountAsync(a => a.MessageId == replyId && a.Sha256 == Sha(pdf))));
    }

    [Fact]
    public async Task The_orphan_sweep_spares_held_blobs_and_takes_them_once_the_hold_is_released_or_expired()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        var blobs = app.Services.GetRequiredService<IBlobStore>();
        var holds = app.Services.GetRequiredService<IBlobHolds>();
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();
        var held = await blobs.PutAsync("bytes a reply is about to name"u8.ToArray());
        var crashed = await blobs.PutAsync("bytes of a writer that crashed"u8.ToArray());
        var orphan = await blobs.PutAsync("bytes nobody names"u8.ToArray());
        var everythingIsOld = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1);
        db.Add(new BlobHoldRecord { Id = Guid.NewGuid(), Sha256 = crashed.Sha256, ExpiresAtTicks = DateTimeOffset.UtcNow.AddMinutes(-1).UtcTicks });
        await db.SaveChangesAsync();

        var release = await holds.HoldAsync([held.Sha256]);
        Assert.Equal(2, await BlobReferences.SweepOrphansAsync(db, blobs, everythingIsOld, CancellationToken.None));
        Assert.NotNull(blobs.WrittenAt(held.Sha256));
        Assert.Null(blobs.WrittenAt(crashed.Sha256));
        Assert.Null(blobs.WrittenAt(orphan.Sha256));
        // The expired hold is gone; the live one stays until released.
        Assert.Equal([held.Sha256], await db.Set<BlobHoldRecord>().AsNoTracking().Select(h => h.Sha256).ToListAsync());

        await release.DisposeAsync();
        Assert.Equal(1, await BlobReferences.SweepOrphansAsync(db, blobs, everythingIsOld, CancellationToken.None));
        Assert.Null(blobs.WrittenAt(held.Sha256));
    }

    [Fact]
    public async Task A_writers_hold_waits_while_a_delete_of_the_same_bytes_is_in_progress()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        var holds = app.Services.GetRequiredService<IBlobHolds>();
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();
        var sha = Sha("contested"u8.ToArray());
        var deleting = Guid.NewGuid();
        Assert.True(await BlobHoldSql.TryHoldAsync(db, deleting, sha, deleting: true, TimeSpan.FromMinutes(5), CancellationToken.None));

        var writer = holds.HoldAsync([sha]);
        // The writer keeps trying while the delete holds (no fixed sleep: a second deleter's hold still succeeds, and the
        // writer has not got in by the time we look, since the delete hold is still live).
        Assert.True(await BlobHoldSql.TryHoldAsync(db, Guid.NewGuid(), sha, deleting: true, TimeSpan.FromMinutes(5), CancellationToken.None));
        Assert.False(writer.IsCompleted);
        await db.Set<BlobHoldRecord>().Where(h => h.Deleting).ExecuteDeleteAsync();
        await using var release = await writer.WaitAsync(TimeSpan.FromSeconds(60));
        // Now a deleter is refused.
        Assert.False(await BlobHoldSql.TryHoldAsync(db, Guid.NewGuid(), sha, deleting: true, TimeSpan.FromMinutes(5), CancellationToken.None));
    }

    /// <summary>A hook for every put that does what a deleter on another node does: check the rows, delete when none names the bytes.</summary>
    private static Func<string, Task> ForeignDelete(CrmApp app, HookedBlobStore hooked, List<bool> deletes)
    {
        var contexts = app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>();
        return async sha256 =>
        {
            await using var db = await contexts.CreateDbContextAsync();
            var deleted = await BlobReferences.DeleteIfUnnamedAsync(db, hooked, sha256, null, CancellationToken.None);
            lock (deletes)
                deletes.Add(deleted);
        };
    }

    private static CrmApp HookedApp(string data, HookedBlobStore hooked) => new(data, services: s => s.AddSingleton<IBlobStore>(sp =>
    {
        hooked.Inner = ActivatorUtilities.CreateInstance<FileBlobStore>(sp);
        return hooked;
    }));

    [Fact]
    public async Task Another_nodes_delete_between_an_inbound_attachments_put_and_its_commit_leaves_the_file()
    {
        // Review EM7 EN3: inbound attachments (and raw sources) are held like a reply's files.
        using var data = new TempDirectory();
        var hooked = new HookedBlobStore();
        await using var app = HookedApp(data.Path, hooked);
        await using var mail = await Email.MailServer.StartAsync();
        var deletes = new List<bool>();
        hooked.AfterPut = ForeignDelete(app, hooked, deletes);
        using (var admin = app.Admin())
            (await admin.PutAsJsonAsync("/api/v1/admin/channels/support", new { kind = "email", name = "Support", settings = mail.ChannelSettings() })).EnsureSuccessStatusCode();
        var pdf = new byte[30_000];
        new Random(11).NextBytes(pdf);
        "%PDF-1.4\n"u8.CopyTo(pdf);
        var opening = new MimeKit.MimeMessage { MessageId = "held-inbound@customer.example.test", Subject = "The contract" };
        opening.From.Add(new MimeKit.MailboxAddress("Carol", Email.MailServer.Customer));
        opening.To.Add(new MimeKit.MailboxAddress("Support", Email.MailServer.Support));
        var body = new MimeKit.BodyBuilder { TextBody = "Attached." };
        body.Attachments.Add("contract.pdf", pdf, new MimeKit.ContentType("application", "pdf"));
        opening.Body = body.ToMessageBody();
        await mail.SendAsync(opening);

        var stored = await Eventually.WaitForAsync(
            () => app.QueryAsync(db => db.Attachments.CountAsync(a => a.Sha256 == Sha(pdf))),
            n => n == 1, TimeSpan.FromSeconds(60), "the mail's attachment row");
        hooked.AfterPut = null;
        lock (deletes)
        {
            Assert.NotEmpty(deletes);
            Assert.All(deletes, Assert.False);
        }
        await using (var stream = hooked.Open(Sha(pdf)))
            Assert.NotNull(stream);
        Assert.Equal(0, await app.QueryAsync(db => db.Set<BlobHoldRecord>().CountAsync()));
    }

    [Fact]
    public async Task Another_nodes_delete_between_a_documents_put_and_its_commit_leaves_the_file()
    {
        using var data = new TempDirectory();
        var hooked = new HookedBlobStore();
        await using var app = HookedApp(data.Path, hooked);
        await app.CreateApiChannelAsync();
        var (_, customer) = await app.ReceiveAsync("doc-1", "dora");
        var deletes = new List<bool>();
        hooked.AfterPut = ForeignDelete(app, hooked, deletes);
        var bytes = "%PDF-1.4 the signed contract"u8.ToArray();

        var (refusal, document) = await app.Services.GetRequiredService<CustomerDocumentStore>().AddAsync(customer, "contract.pdf", bytes, "agent", CancellationToken.None);
        hooked.AfterPut = null;

        Assert.Equal(DocumentRefusal.None, refusal);
        Assert.Equal([false], deletes);
        await using (var stream = hooked.Open(document!.Sha256))
            Assert.NotNull(stream);
        Assert.Equal(0, await app.QueryAsync(db => db.Set<BlobHoldRecord>().CountAsync()));
    }

    [Fact]
    public async Task A_document_uploaded_while_its_customer_is_merged_lands_on_the_surviving_customer()
    {
        // Issue 17: the merge commits between the upload's owner check and its insert; the insert reads the owner again.
        using var data = new TempDirectory();
        var hooked = new HookedBlobStore();
        await using var app = HookedApp(data.Path, hooked);
        await app.CreateApiChannelAsync();
        var (_, source) = await app.ReceiveAsync("merge-1", "sam");
        var (_, target) = await app.ReceiveAsync("merge-2", "tina");
        hooked.AfterPut = async _ =>
        {
            hooked.AfterPut = null;
            await app.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers).MergeCustomersAsync(source, target, "agent");
        };

        var (refusal, document) = await app.Services.GetRequiredService<CustomerDocumentStore>()
            .AddAsync(source, "invoice.pdf", "%PDF-1.4 invoice"u8.ToArray(), "agent", CancellationToken.None);

        Assert.Equal(DocumentRefusal.None, refusal);
        Assert.Equal(target, document!.CustomerId);
        Assert.Equal(target, await app.QueryAsync(db => db.CustomerDocuments.Where(d => d.Id == document.Id).Select(d => d.CustomerId).SingleAsync()));
        Assert.Contains(await app.Services.GetRequiredService<CustomerDocumentStore>().ListAsync(target, CancellationToken.None), d => d.Id == document.Id);
    }

    [Fact]
    public async Task A_writer_facing_a_delete_hold_a_crash_left_fails_as_retryable_within_the_bound()
    {
        // Review EN6: a crashed deleter's hold lives 5 minutes; a writer gives up after the bound rather than block its grain.
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        var holds = app.Services.GetRequiredService<IBlobHolds>();
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();
        var sha = Sha("left by a crashed deleter"u8.ToArray());
        Assert.True(await BlobHoldSql.TryHoldAsync(db, Guid.NewGuid(), sha, deleting: true, TimeSpan.FromMinutes(5), CancellationToken.None));
        var before = SqliteBlobHolds.MaxWait;
        SqliteBlobHolds.MaxWait = TimeSpan.FromSeconds(1);
        try
        {
            var writer = holds.HoldAsync([sha]);
            // Far longer than the bound: without it, the writer would still be waiting for the 5-minute hold.
            var error = await Assert.ThrowsAsync<TimeoutException>(() => writer.WaitAsync(TimeSpan.FromSeconds(120)));
            Assert.Contains("try again", error.Message);
        }
        finally
        {
            SqliteBlobHolds.MaxWait = before;
        }
    }
}
