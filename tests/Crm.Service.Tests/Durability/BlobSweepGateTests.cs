using System.Text;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Blobs;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Crm.Service.Tests.Durability;

/// <summary>Reviews KW7, KW1 and KW15: the orphan sweep takes the global blob gate only for a candidate's own check
/// and delete, re-reads a candidate's age under the gate, and clears temporary files a crash left.</summary>
[Collection(nameof(BlobSweepGateTests))] // BlobReferences.Gate is process-wide: these tests hold it.
public sealed class BlobSweepGateTests
{
    private static async Task<(CrmApp App, string Attachment)> AppWithAMailAttachmentAsync(TempDirectory data)
    {
        var app = new CrmApp(data.Path);
        await app.CreateApiChannelAsync();
        (await app.PostMessageAsync(new
        {
            messageId = "m-1", sender = new { id = "kim", name = "Kim" }, subject = "Invoice", text = "See attached",
            attachments = new[] { new { fileName = "invoice.txt", contentType = "text/plain", contentBase64 = Convert.ToBase64String("an invoice"u8.ToArray()) } },
        })).EnsureSuccessStatusCode();
        var sha = await Eventually.WaitForAsync(() => app.QueryAsync(db => db.Attachments.AsNoTracking().Select(a => a.Sha256).FirstOrDefaultAsync()),
            s => s is not null, what: "the mail's attachment committed");
        return (app, sha!);
    }

    [Fact]
    public async Task Checking_blobs_that_rows_name_does_not_wait_for_the_gate()
    {
        using var data = new TempDirectory();
        var (app, attachment) = await AppWithAMailAttachmentAsync(data);
        await using var _ = app;
        var blobs = app.Services.GetRequiredService<IBlobStore>();
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();

        // An upload (or a delete) holds the gate for as long as it likes: the sweep over named blobs goes on.
        await BlobReferences.Gate.WaitAsync();
        int deleted;
        try
        {
            deleted = await BlobReferences.SweepOrphansAsync(db, blobs, DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1), CancellationToken.None)
                .WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            BlobReferences.Gate.Release();
        }

        Assert.Equal(0, deleted);
        await using var kept = blobs.Open(attachment);
        Assert.NotNull(kept);
    }

    /// <summary>KW1, review KB8: an old stored file put again is young again, so a sweep that listed it as old
    /// (before the re-put) keeps it. Without the touch in PutAsync it is deleted.</summary>
    [Fact]
    public async Task A_blob_put_again_after_the_listing_is_young_again_when_the_sweep_comes_to_delete_it()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        var blobs = app.Services.GetRequiredService<IBlobStore>();
        var bytes = Encoding.UTF8.GetBytes("bytes a crash left, stored again by a mail being committed now");
        var sha = (await blobs.PutAsync(bytes)).Sha256;
        File.SetLastWriteTimeUtc(FileOf(app, sha), DateTime.UtcNow - TimeSpan.FromDays(2));
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();

        Assert.Equal(sha, (await blobs.PutAsync(bytes)).Sha256);
        // The listing was read before the re-put: it says "old".
        var deleted = await BlobReferences.SweepOrphansAsync(db, new StaleListing(blobs), DateTimeOffset.UtcNow - TimeSpan.FromHours(1), CancellationToken.None);

        Assert.Equal(0, deleted);
        await using var kept = blobs.Open(sha);
        Assert.NotNull(kept);
    }

    /// <summary>Review KB4: when the stored file's mtime cannot be set (a file another user owns), the re-put writes
    /// the bytes again (a young new file) instead of reporting success on an old file the sweep would delete.</summary>
    [Fact]
    public async Task A_blob_put_again_whose_file_cannot_be_touched_is_rewritten_young_and_the_sweep_keeps_it()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        var options = app.Services.GetRequiredService<IOptions<StoreOptions>>();
        var blobs = new FileBlobStore(options) { SetLastWriteTime = (_, _) => throw new UnauthorizedAccessException("not the owner") };
        var bytes = Encoding.UTF8.GetBytes("bytes restored from a backup another user owns");
        var sha = (await blobs.PutAsync(bytes)).Sha256;
        File.SetLastWriteTimeUtc(FileOf(app, sha), DateTime.UtcNow - TimeSpan.FromDays(2));
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();

        await blobs.PutAsync(bytes);
        var deleted = await BlobReferences.SweepOrphansAsync(db, new StaleListing(blobs), DateTimeOffset.UtcNow - TimeSpan.FromHours(1), CancellationToken.None);

        Assert.Equal(0, deleted);
        await using var kept = blobs.Open(sha);
        Assert.NotNull(kept);
    }

    private static string FileOf(CrmApp app, string sha) =>
        Directory.EnumerateFiles(app.Services.GetRequiredService<IOptions<StoreOptions>>().Value.BlobDirectory, sha, SearchOption.AllDirectories).Single();

    [Fact]
    public async Task The_sweep_clears_old_temporary_files_a_crash_left_and_spares_a_put_in_progress()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        var blobs = app.Services.GetRequiredService<IBlobStore>();
        var root = app.Services.GetRequiredService<IOptions<StoreOptions>>().Value.BlobDirectory;
        var folder = Directory.CreateDirectory(Path.Combine(root, "ab", "cd")).FullName;
        var crashed = Path.Combine(folder, $".abcd{new string('0', 60)}.{Guid.NewGuid():N}.tmp");
        var inProgress = Path.Combine(folder, $".abcd{new string('1', 60)}.{Guid.NewGuid():N}.tmp");
        await File.WriteAllTextAsync(crashed, "half a blob");
        await File.WriteAllTextAsync(inProgress, "a blob being written");
        File.SetLastWriteTimeUtc(crashed, DateTime.UtcNow - TimeSpan.FromDays(2));
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();

        await BlobReferences.SweepOrphansAsync(db, blobs, DateTimeOffset.UtcNow - TimeSpan.FromDays(1), CancellationToken.None);

        Assert.False(File.Exists(crashed));
        Assert.True(File.Exists(inProgress));
    }

    /// <summary>KW15: the tables that name blobs are listed by hand; every <c>*Sha256</c> column of the model must be
    /// in that list or declared not to be a blob name, so the sweep and the clean-ups never miss a new one.</summary>
    [Fact]
    public async Task Every_sha256_column_of_the_model_is_checked_for_blob_references_or_declared_not_one()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>().CreateDbContextAsync();
        var columns = db.Model.GetEntityTypes()
            .SelectMany(t => t.GetProperties().Where(p => p.Name.EndsWith("Sha256", StringComparison.Ordinal)).Select(p => (t.ClrType, p.Name)))
            .ToHashSet();
        var declared = BlobReferences.Columns.Concat(BlobReferences.NotBlobNames).ToHashSet();

        Assert.Equal(5, BlobReferences.Columns.Count);
        Assert.Empty(columns.Except(declared));
        Assert.Empty(declared.Except(columns));
        // The generic query runs against every listed table (a missing table or column would throw).
        Assert.False(await BlobReferences.AnyAsync(db, new string('a', 64), CancellationToken.None));
    }

    /// <summary>The real store, but its listing reports every blob as written long ago (read before a re-put).</summary>
    private sealed class StaleListing(IBlobStore inner) : IBlobStore
    {
        public Task<StoredBlob> PutAsync(ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default) => inner.PutAsync(content, cancellationToken);
        public Stream? Open(string sha256) => inner.Open(sha256);
        public bool Delete(string sha256) => inner.Delete(sha256);
        public IEnumerable<(string Sha256, DateTimeOffset WrittenAt)> List() => inner.List().Select(b => (b.Sha256, DateTimeOffset.UnixEpoch));
        public DateTimeOffset? WrittenAt(string sha256) => inner.WrittenAt(sha256);
    }
}
