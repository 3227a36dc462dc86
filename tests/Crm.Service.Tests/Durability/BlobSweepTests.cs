using System.Text;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Blobs;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Durability;

/// <summary>Review R4: the orphan sweep deletes blobs no row names, keeps every blob mail ingest wrote (attachments,
/// raw sources: checked in BlobReferences like knowledge-base files), and spares young blobs whose row may not be
/// committed yet. Real app, real store and blob folder.</summary>
public sealed class BlobSweepTests
{
    [Fact]
    public async Task The_sweep_keeps_a_mails_attachment_and_a_young_blob_and_deletes_a_true_orphan()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await app.CreateApiChannelAsync();
        var attachmentBytes = Encoding.UTF8.GetBytes("the invoice attached to a customer's mail");
        (await app.PostMessageAsync(new
        {
            messageId = "m-1", sender = new { id = "kim", name = "Kim" }, subject = "Invoice", text = "See attached",
            attachments = new[] { new { fileName = "invoice.txt", contentType = "text/plain", contentBase64 = Convert.ToBase64String(attachmentBytes) } },
        })).EnsureSuccessStatusCode();
        var contexts = app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>();
        var blobs = app.Services.GetRequiredService<IBlobStore>();
        var attachment = await Eventually.WaitForAsync(async () =>
        {
            await using var db = await contexts.CreateDbContextAsync();
            return await db.Attachments.AsNoTracking().Select(a => a.Sha256).FirstOrDefaultAsync();
        }, sha => sha is not null, what: "the mail's attachment committed");
        var orphan = (await blobs.PutAsync(Encoding.UTF8.GetBytes("bytes left by a crash before their row"))).Sha256;

        await using (var db = await contexts.CreateDbContextAsync())
        {
            // Within the grace period nothing goes: a young blob may be a message being committed.
            Assert.Equal(0, await BlobReferences.SweepOrphansAsync(db, blobs, DateTimeOffset.UtcNow - TimeSpan.FromHours(1), CancellationToken.None));
            Assert.Equal(1, await BlobReferences.SweepOrphansAsync(db, blobs, DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1), CancellationToken.None));
        }

        Assert.Null(blobs.Open(orphan));
        await using var kept = blobs.Open(attachment!);
        Assert.NotNull(kept);
    }
}
