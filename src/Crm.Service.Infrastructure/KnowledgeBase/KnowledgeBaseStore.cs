using Crm.Service.Infrastructure.Blobs;
using System.Globalization;
using System.Text;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.Store;
using Markdig;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.KnowledgeBase;

/// <summary>What an editor sends when creating or saving an article.</summary>
public sealed record ArticleDraft(
    string Language,
    string Title,
    string BodyMarkdown,
    string Visibility,
    Guid? CategoryId = null,
    IReadOnlyList<string>? Tags = null,
    string? Slug = null,
    Guid? TranslationOf = null);

/// <summary>A knowledge-base request the store refuses; <see cref="Kind"/> says how (the API maps it to 404/409/422).</summary>
public sealed class KnowledgeBaseException(KnowledgeBaseError kind, string message, string? field = null) : Exception(message)
{
    public KnowledgeBaseError Kind { get; } = kind;
    public string? Field { get; } = field;
}

public enum KnowledgeBaseError { NotFound, Conflict, Invalid }

/// <summary>The change feed's rows for articles: entity "article", kinds created/updated/deleted.</summary>
public static class ArticleChanges
{
    public const string Entity = "article";
    public const string Deleted = "deleted";
}

/// <summary>
/// Articles, their revisions and categories in the store. Every save writes the article, a revision and a change-feed
/// row ("article") in one transaction, so the search index (a feed consumer) follows every committed save and never
/// one that rolled back. Saves are optimistic: each names the version it edited, and a save against an older version
/// is refused with a conflict instead of overwriting someone else's work.
/// </summary>
public sealed partial class KnowledgeBaseStore(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer, ChangeFeedSignal signal,
    Grains.Storage.IHtmlSanitizer sanitizer, TimeProvider time, IBlobStore blobs, IBlobHolds blobHolds)
{
    public const int MaxTitleLength = 200;
    public const int MaxBodyLength = 200_000;
    public const int MaxTags = 20;

    private static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder().UseAdvancedExtensions().DisableHtml().Build();

    /// <summary>Markdown → HTML (raw HTML in the Markdown is not passed through), then the one sanitizer policy, then
    /// the articles' image rule: an image shows only from our own attachment URLs (<see cref="AttachmentPath"/>);
    /// any other (remote, or another path of this service) becomes its alt text.</summary>
    public string Render(string markdown) => OwnImagesOnly(sanitizer.Sanitize(Parse(() => Markdown.ToHtml(markdown, Pipeline))));

    /// <summary>Where an attachment is served: /kb/files/{id}/{file name}.</summary>
    public static string AttachmentPath(Guid id, string fileName) => $"/kb/files/{id:D}/{Uri.EscapeDataString(fileName)}";

    [System.Text.RegularExpressions.GeneratedRegex("^/kb/files/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[^/?#\\\\]+$")]
    private static partial System.Text.RegularExpressions.Regex OwnImage();

    private static string OwnImagesOnly(string html)
    {
        if (!html.Contains("<img", StringComparison.OrdinalIgnoreCase))
            return html;
        var document = new AngleSharp.Html.Parser.HtmlParser().ParseDocument("<body>" + html + "</body>");
        foreach (var image in document.QuerySelectorAll("img").ToList())
        {
            if (image.GetAttribute("src") is { } src && OwnImage().IsMatch(src) && image.GetAttribute("data-remote-src") is null)
                continue;
            var alt = image.GetAttribute("alt");
            image.Replace(document.CreateTextNode(string.IsNullOrEmpty(alt) ? "" : alt));
        }
        return document.Body!.InnerHtml;
    }

    /// <summary>The files an article may carry: the type an uploader declares must also be what the first bytes say
    /// (a page saved as "picture.png" is refused). No SVG: it is a document that can run script.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> AttachmentTypes = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        ["image/png"] = [".png"], ["image/jpeg"] = [".jpg", ".jpeg"], ["image/gif"] = [".gif"], ["image/webp"] = [".webp"],
        ["application/pdf"] = [".pdf"], ["text/plain"] = [".txt", ".log", ".md"],
    };

    public const long DefaultMaxAttachmentBytes = 10 * 1024 * 1024;

    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly byte[] JpegSignature = [0xFF, 0xD8, 0xFF];

    /// <summary>Whether the first bytes are what the declared type says (text: valid UTF-8 without NUL bytes).</summary>
    public static bool LooksLike(string contentType, ReadOnlySpan<byte> bytes) => contentType switch
    {
        "image/png" => bytes.StartsWith(PngSignature),
        "image/jpeg" => bytes.StartsWith(JpegSignature),
        "image/gif" => bytes.StartsWith("GIF87a"u8) || bytes.StartsWith("GIF89a"u8),
        "image/webp" => bytes.Length >= 12 && bytes.StartsWith("RIFF"u8) && bytes[8..12].SequenceEqual("WEBP"u8),
        "application/pdf" => bytes.StartsWith("%PDF-"u8),
        "text/plain" => !bytes.Contains((byte)0) && System.Text.Unicode.Utf8.IsValid(bytes),
        _ => false,
    };

    /// <summary>Stores an uploaded file for an article (editors; the API checks the size before reading it all).</summary>
    public async Task<ArticleAttachmentRecord> AddAttachmentAsync(Guid articleId, string fileName, string contentType, ReadOnlyMemory<byte> content, string actor,
        CancellationToken cancellationToken = default)
    {
        fileName = System.IO.Path.GetFileName((fileName ?? "").Replace('\\', '/')).Trim();
        if (fileName.Length is 0 or > 200 || fileName.Any(c => char.IsControl(c) || c is '/' or '"'))
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, "Give the file a name of 1 to 200 characters without slashes, quotes or control characters.", "fileName");
        if (!AttachmentTypes.TryGetValue(contentType, out var extensions))
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid,
                $"Files of type {contentType} are not accepted; upload one of {string.Join(", ", AttachmentTypes.Keys)}.", "contentType");
        if (!extensions.Any(e => fileName.EndsWith(e, StringComparison.OrdinalIgnoreCase)))
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, $"A {contentType} file's name must end in {string.Join(" or ", extensions)}.", "fileName");
        if (!LooksLike(contentType, content.Span))
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, $"The file's content is not {contentType}; upload the file as what it is.", "contentType");
        await using var db = await OpenAsync(cancellationToken);
        if (!await db.KbArticles.AnyAsync(a => a.Id == articleId, cancellationToken))
            throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, $"Article {articleId} does not exist.");
        ArticleAttachmentRecord attachment;
        // The blob first (fsynced), then the row: a crash in between leaves an unreferenced blob, never a row without
        // bytes. Under a durable blob hold (released after the commit), so no node's clean-up deletes these bytes between the two (EN3).
        await using (var held = await HeldBlobs.HoldAndPutAsync(blobHolds, blobs, [content], cancellationToken))
        {
            var blob = held.Blobs[0];
            attachment = new ArticleAttachmentRecord
            {
                Id = Guid.NewGuid(), ArticleId = articleId, FileName = fileName, ContentType = contentType, Size = blob.Length, Sha256 = blob.Sha256,
                UploadedBy = actor, UploadedAt = time.GetUtcNow(),
            };
            db.Set<ArticleAttachmentRecord>().Add(attachment);
            // The search index holds a text file's words with the article's: the article is re-indexed.
            db.Changes.Add(new ChangeRecord { Entity = ArticleChanges.Entity, EntityId = articleId.ToString("D"), Kind = "updated", At = attachment.UploadedAt });
            await db.SaveChangesAsync(cancellationToken);
            signal.Notify();
        }
        // An article deleted meanwhile: its delete either removed this row (it committed after the insert; SQLite has
        // one writer) or committed before it, which this check sees. No row is left for an article that is gone.
        if (!await db.KbArticles.AnyAsync(a => a.Id == articleId, cancellationToken))
        {
            await db.Set<ArticleAttachmentRecord>().Where(a => a.Id == attachment.Id).ExecuteDeleteAsync(cancellationToken);
            await BlobReferences.DeleteUnreferencedAsync(db, blobs, [attachment.Sha256], cancellationToken);
            throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, $"Article {articleId} was deleted while the file was uploaded.");
        }
        return attachment;
    }

    public async Task<IReadOnlyList<ArticleAttachmentRecord>> AttachmentsAsync(Guid articleId, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        return await db.Set<ArticleAttachmentRecord>().AsNoTracking().Where(a => a.ArticleId == articleId).OrderBy(a => a.UploadedAt).ToListAsync(cancellationToken);
    }

    /// <summary>An attachment with its article's status and visibility (who may read it), or null.</summary>
    public async Task<(ArticleAttachmentRecord Attachment, string Status, string Visibility)?> AttachmentAsync(Guid id, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        var found = await db.Set<ArticleAttachmentRecord>().AsNoTracking().Where(a => a.Id == id)
            .Join(db.KbArticles, a => a.ArticleId, article => article.Id, (a, article) => new { a, article.Status, article.Visibility })
            .FirstOrDefaultAsync(cancellationToken);
        return found is null ? null : (found.a, found.Status, found.Visibility);
    }

    public Stream? OpenBlob(string sha256) => blobs.Open(sha256);

    /// <summary>Removes the attachment and, when nothing else names the same bytes, the bytes themselves (an editor who
    /// removes a screenshot because it showed a customer's data expects it gone).</summary>
    public async Task<bool> DeleteAttachmentAsync(Guid articleId, Guid id, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        var sha256 = await db.Set<ArticleAttachmentRecord>().Where(a => a.Id == id && a.ArticleId == articleId).Select(a => a.Sha256).FirstOrDefaultAsync(cancellationToken);
        if (sha256 is null)
            return false;
        await using (var transaction = await db.Database.BeginTransactionAsync(cancellationToken))
        {
            if (await db.Set<ArticleAttachmentRecord>().Where(a => a.Id == id && a.ArticleId == articleId).ExecuteDeleteAsync(cancellationToken) == 0)
                return false;
            // Its text leaves the index with it (same transaction: a crash cannot leave the row gone but the words findable).
            db.Changes.Add(new ChangeRecord { Entity = ArticleChanges.Entity, EntityId = articleId.ToString("D"), Kind = "updated", At = time.GetUtcNow() });
            await db.SaveChangesAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }
        signal.Notify();
        await BlobReferences.DeleteUnreferencedAsync(db, blobs, [sha256], cancellationToken);
        return true;
    }

    /// <summary>The most characters of one article's text attachments that are indexed.</summary>
    public const int MaxAttachmentTextLength = 100_000;

    /// <summary>The words of each article's text attachments (text/plain; a .md file as its Markdown's plain text), for
    /// the search index, at most <see cref="MaxAttachmentTextLength"/> characters per article. Images and PDFs have no
    /// text here (no PDF text library is served).</summary>
    public async Task<IReadOnlyDictionary<Guid, string>> AttachmentTextsAsync(IReadOnlyCollection<Guid> articleIds, CancellationToken cancellationToken = default)
    {
        var texts = new Dictionary<Guid, string>();
        if (articleIds.Count == 0)
            return texts;
        await using var db = await OpenAsync(cancellationToken);
        var files = new List<ArticleAttachmentRecord>();
        foreach (var chunk in articleIds.Chunk(500))
            files.AddRange(await db.Set<ArticleAttachmentRecord>().AsNoTracking().Where(a => chunk.Contains(a.ArticleId) && a.ContentType == "text/plain")
                .OrderBy(a => a.UploadedAt).ToListAsync(cancellationToken));
        foreach (var group in files.GroupBy(f => f.ArticleId))
        {
            var text = new System.Text.StringBuilder();
            foreach (var file in group)
            {
                if (text.Length >= MaxAttachmentTextLength || blobs.Open(file.Sha256) is not { } stream)
                    continue;
                using var reader = new StreamReader(stream, System.Text.Encoding.UTF8);
                var buffer = new char[MaxAttachmentTextLength - text.Length];
                var read = await reader.ReadBlockAsync(buffer, cancellationToken);
                var content = new string(buffer, 0, read);
                if (file.FileName.EndsWith(".md", StringComparison.OrdinalIgnoreCase))
                    content = ToPlainText(content);
                text.Append(file.FileName).Append('\n').Append(content).Append("\n\n");
            }
            texts[group.Key] = text.ToString();
        }
        return texts;
    }

    public static string ToPlainText(string markdown) =>
        System.Net.WebUtility.HtmlDecode(Parse(() => Markdown.ToPlainText(markdown, Pipeline))).Trim();

    /// <summary>Markdig refuses input nested deeper than its limit (128) with an ArgumentException: that is the editor's
    /// input to fix (422), not a server error.</summary>
    private static string Parse(Func<string> parse)
    {
        try
        {
            return parse();
        }
        catch (ArgumentException e) when (e.Message.Contains("nested", StringComparison.OrdinalIgnoreCase))
        {
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid,
                "The body nests quotes or lists too deeply (Markdown allows at most 127 levels); flatten it.", "body");
        }
    }

    private async Task<CrmDbContext> OpenAsync(CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        return await contexts.CreateDbContextAsync(cancellationToken);
    }

    /// <summary>The newest article change at or before <paramref name="atMost"/> still in the feed (null: none), for
    /// checking a search index's version marker against the consumer cursor. Pruning only lowers it, so a
    /// good index is never taken for an old copy.</summary>
    public async Task<long?> LastArticleChangeAsync(long atMost, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        // Newest first along the primary key from the cursor down, stopping at the first article row (run once at start).
        return await db.Changes.Where(c => c.Sequence <= atMost && c.Entity == ArticleChanges.Entity).OrderByDescending(c => c.Sequence)
            .Select(c => (long?)c.Sequence).FirstOrDefaultAsync(cancellationToken);
    }

    /// <summary>Of these article ids (as the index names them), the ones that are published and public in the store
    /// now. Public searches keep only those: whatever an index lags behind or a restored copy still holds, what the
    /// world sees is what the store says (one primary-key lookup per hit page).</summary>
    public async Task<IReadOnlySet<string>> PublicArticleIdsAsync(IEnumerable<string> ids, CancellationToken cancellationToken = default)
    {
        var guids = ids.Select(id => Guid.TryParse(id, out var g) ? g : (Guid?)null).OfType<Guid>().Distinct().ToList();
        if (guids.Count == 0)
            return new HashSet<string>();
        await using var db = await OpenAsync(cancellationToken);
        var found = await db.KbArticles.AsNoTracking()
            .Where(a => guids.Contains(a.Id) && a.Status == ArticleStatus.Published && a.Visibility == ArticleVisibility.Public)
            .Select(a => a.Id).ToListAsync(cancellationToken);
        return found.Select(g => g.ToString("D")).ToHashSet(StringComparer.OrdinalIgnoreCase);
    }

    public async Task<ArticleRecord?> GetAsync(Guid id, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        return await db.KbArticles.AsNoTracking().FirstOrDefaultAsync(a => a.Id == id, cancellationToken);
    }

    public async Task<ArticleRecord?> GetBySlugAsync(string language, string slug, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        return await db.KbArticles.AsNoTracking().FirstOrDefaultAsync(a => a.Language == language && a.Slug == slug, cancellationToken);
    }

    public async Task<IReadOnlyList<ArticleRecord>> TranslationsAsync(Guid group, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        return await db.KbArticles.AsNoTracking().Where(a => a.TranslationGroup == group).OrderBy(a => a.Language).ToListAsync(cancellationToken);
    }

    /// <summary>Which articles a list shows. <see cref="Uncategorized"/> keeps those without a category;
    /// <see cref="ByTitle"/> orders by title instead of newest change first.</summary>
    public sealed record ArticleFilter(string? Language = null, string? Status = null, string? Visibility = null, Guid? CategoryId = null, string? Tag = null,
        int Skip = 0, int Take = 50, bool Uncategorized = false, bool ByTitle = false);

    public const int MaxListPage = 200;

    /// <summary>Lists read these columns only, never the three bodies (up to <see cref="MaxBodyLength"/> each).</summary>
    public sealed record ArticleSummary(Guid Id, string Language, string Title, string Slug, string Status, string Visibility, Guid? CategoryId,
        List<string> Tags, DateTimeOffset UpdatedAt, string UpdatedBy, int Version);

    /// <summary>A cheap fingerprint of what a filter selects (count, sum of versions, newest change): every save, publish,
    /// unpublish or delete changes it, so a page's ETag can be checked before any row is read.</summary>
    public sealed record ListStamp(int Count, long Versions, long LastUpdate);

    /// <summary>One page of the filtered articles, paged and projected in SQL.</summary>
    public async Task<IReadOnlyList<ArticleSummary>> ListAsync(ArticleFilter filter, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        var query = await FilterAsync(db, filter, cancellationToken);
        query = filter.ByTitle ? query.OrderBy(a => a.Title).ThenBy(a => a.Id) : query.OrderByDescending(a => a.UpdatedAt).ThenBy(a => a.Id);
        return await query.Skip(Math.Max(0, filter.Skip)).Take(Math.Clamp(filter.Take, 1, MaxListPage))
            .Select(a => new ArticleSummary(a.Id, a.Language, a.Title, a.Slug, a.Status, a.Visibility, a.CategoryId, a.Tags, a.UpdatedAt, a.UpdatedBy, a.Version))
            .ToListAsync(cancellationToken);
    }

    /// <summary>Articles in <paramref name="languages"/> whose title or slug contains <paramref name="text"/> (case-insensitive
    /// for ASCII, as SQLite's LIKE), by title: what the editor's "link a translation" search offers, however many there are.</summary>
    public async Task<IReadOnlyList<ArticleSummary>> FindAsync(string text, IReadOnlyCollection<string> languages, int take, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(text) || languages.Count == 0)
            return [];
        var pattern = "%" + text.Trim().Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_") + "%";
        await using var db = await OpenAsync(cancellationToken);
        return await db.KbArticles.AsNoTracking()
            .Where(a => languages.Contains(a.Language) && (EF.Functions.Like(a.Title, pattern, "\\") || EF.Functions.Like(a.Slug, pattern, "\\")))
            .OrderBy(a => a.Title).ThenBy(a => a.Id).Take(Math.Clamp(take, 1, MaxListPage))
            .Select(a => new ArticleSummary(a.Id, a.Language, a.Title, a.Slug, a.Status, a.Visibility, a.CategoryId, a.Tags, a.UpdatedAt, a.UpdatedBy, a.Version))
            .ToListAsync(cancellationToken);
    }

    public async Task<ListStamp> StampAsync(ArticleFilter filter, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        var query = await FilterAsync(db, filter, cancellationToken);
        var stamp = await query.GroupBy(_ => 1)
            .Select(g => new { Count = g.Count(), Versions = g.Sum(a => (long)a.Version), Last = g.Max(a => a.UpdatedAt) })
            .FirstOrDefaultAsync(cancellationToken);
        return stamp is null ? new ListStamp(0, 0, 0) : new ListStamp(stamp.Count, stamp.Versions, stamp.Last.UtcTicks);
    }

    private static async Task<IQueryable<ArticleRecord>> FilterAsync(CrmDbContext db, ArticleFilter filter, CancellationToken cancellationToken)
    {
        // Tags are a JSON array column: SQLite's json_each matches one exactly, in SQL.
        var query = filter.Tag is { } tag
            ? db.KbArticles.FromSql($"SELECT * FROM KbArticles WHERE EXISTS (SELECT 1 FROM json_each(KbArticles.Tags) WHERE json_each.value = {tag})").AsNoTracking()
            : db.KbArticles.AsNoTracking();
        if (filter.Language is not null) query = query.Where(a => a.Language == filter.Language);
        if (filter.Status is not null) query = query.Where(a => a.Status == filter.Status);
        if (filter.Visibility is not null) query = query.Where(a => a.Visibility == filter.Visibility);
        if (filter.Uncategorized) query = query.Where(a => a.CategoryId == null);
        if (filter.CategoryId is { } category)
        {
            var ids = await DescendantsAsync(db, category, cancellationToken);
            query = query.Where(a => a.CategoryId != null && ids.Contains(a.CategoryId.Value));
        }
        return query;
    }

    /// <summary>Reads every article in id order, a page at a time, for a reindex.</summary>
    public async IAsyncEnumerable<IReadOnlyList<ArticleRecord>> AllAsync(int pageSize, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        Guid? after = null;
        while (true)
        {
            await using var db = await OpenAsync(cancellationToken);
            var query = db.KbArticles.AsNoTracking();
            if (after is { } last)
                query = query.Where(a => a.Id.CompareTo(last) > 0);
            var page = await query.OrderBy(a => a.Id).Take(pageSize).ToListAsync(cancellationToken);
            if (page.Count == 0)
                yield break;
            yield return page;
            after = page[^1].Id;
        }
    }

    public async Task<int> CountAsync(CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        return await db.KbArticles.CountAsync(cancellationToken);
    }

    public async Task<ArticleRecord> CreateAsync(ArticleDraft draft, string actor, CancellationToken cancellationToken = default)
    {
        Validate(draft);
        await using var db = await OpenAsync(cancellationToken);
        var now = time.GetUtcNow();
        var group = Guid.CreateVersion7();
        if (draft.TranslationOf is { } original)
        {
            group = await db.KbArticles.Where(a => a.Id == original).Select(a => (Guid?)a.TranslationGroup).FirstOrDefaultAsync(cancellationToken)
                ?? throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, $"Article {original} (translationOf) does not exist.", "translationOf");
            if (await db.KbArticles.AnyAsync(a => a.TranslationGroup == group && a.Language == draft.Language, cancellationToken))
                throw new KnowledgeBaseException(KnowledgeBaseError.Conflict, $"That article already has a {draft.Language} translation; edit it instead.", "language");
        }
        await RequireCategoryAsync(db, draft.CategoryId, cancellationToken);
        // An editor-chosen slug is refused when taken, as on an edit (no silent "-2"), and stops being anyone's old
        // slug, or the redirect would come back when this article is deleted (review KB6). A title's slug is suffixed.
        string slug;
        if (draft.Slug is { } chosen)
        {
            if (await db.KbArticles.Where(a => a.Language == draft.Language && a.Slug == chosen).Select(a => a.Title).FirstOrDefaultAsync(cancellationToken) is { } other)
                throw new KnowledgeBaseException(KnowledgeBaseError.Conflict, $"The {draft.Language} article \"{other}\" already uses the slug \"{chosen}\". Choose another.", "slug");
            var olds = db.Set<ArticleOldSlugRecord>();
            olds.RemoveRange(await olds.Where(o => o.Language == draft.Language && o.Slug == chosen).ToListAsync(cancellationToken));
            slug = chosen;
        }
        else
        {
            slug = await UniqueSlugAsync(db, draft.Language, draft.Title, null, cancellationToken);
        }
        var article = new ArticleRecord
        {
            Id = Guid.CreateVersion7(), TranslationGroup = group, Language = draft.Language, Title = draft.Title.Trim(),
            Slug = slug,
            BodyMarkdown = draft.BodyMarkdown, BodyHtml = Render(draft.BodyMarkdown), BodyText = ToPlainText(draft.BodyMarkdown),
            CategoryId = draft.CategoryId, Tags = NormalizeTags(draft.Tags), Status = ArticleStatus.Draft, Visibility = draft.Visibility,
            Author = actor, UpdatedBy = actor, CreatedAt = now, UpdatedAt = now, Version = 1,
        };
        db.KbArticles.Add(article);
        AddRevisionAndChange(db, article, "created", ChangeKinds.Created, now);
        await SaveAsync(db, cancellationToken);
        return article;
    }

    public Task<ArticleRecord> UpdateAsync(Guid id, int expectedVersion, ArticleDraft draft, string actor, CancellationToken cancellationToken = default) =>
        SaveAsync(id, expectedVersion, draft, null, actor, cancellationToken);

    /// <summary>Saves the content and, in the same revision and version check, sets the status ("Save and publish"):
    /// publishing from the editor never drops what was typed since the last save.</summary>
    public Task<ArticleRecord> SaveAsync(Guid id, int expectedVersion, ArticleDraft draft, string? status, string actor, CancellationToken cancellationToken = default)
    {
        Validate(draft);
        if (status is not null && !ArticleStatus.IsValid(status))
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, "status must be draft, published or archived.", "status");
        var note = status switch { null => "edited", ArticleStatus.Published => "edited and published", ArticleStatus.Archived => "edited and archived", _ => "edited and unpublished" };
        return ChangeAsync(id, expectedVersion, actor, note, async (db, article) =>
        {
            if (draft.Language != article.Language)
                throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, "An article's language cannot change; add a translation instead.", "language");
            await RequireCategoryAsync(db, draft.CategoryId, cancellationToken);
            article.Title = draft.Title.Trim();
            if (draft.Slug is not null && draft.Slug != article.Slug)
                await ChangeSlugAsync(db, article, draft.Slug, cancellationToken);
            article.BodyMarkdown = draft.BodyMarkdown;
            article.BodyHtml = Render(draft.BodyMarkdown);
            article.BodyText = ToPlainText(draft.BodyMarkdown);
            article.CategoryId = draft.CategoryId;
            article.Tags = NormalizeTags(draft.Tags);
            article.Visibility = draft.Visibility;
            if (status is not null)
            {
                if (status == ArticleStatus.Published)
                    article.PublishedAt ??= time.GetUtcNow();
                article.Status = status;
            }
        }, cancellationToken);
    }

    /// <summary>An editor's new slug: refused when another article of the language uses it (no silent "-2", the editor
    /// chose this address). The old slug is kept in KbOldSlugs so the help center redirects it; the new one stops being
    /// anyone's old slug.</summary>
    private static async Task ChangeSlugAsync(CrmDbContext db, ArticleRecord article, string slug, CancellationToken cancellationToken)
    {
        if (await db.KbArticles.Where(a => a.Language == article.Language && a.Slug == slug && a.Id != article.Id).Select(a => a.Title).FirstOrDefaultAsync(cancellationToken) is { } other)
            throw new KnowledgeBaseException(KnowledgeBaseError.Conflict, $"The {article.Language} article \"{other}\" already uses the slug \"{slug}\". Choose another.", "slug");
        var olds = db.Set<ArticleOldSlugRecord>();
        // Tracked, not ExecuteDelete: these rows commit with the article's UPDATE and its version check, or not at all.
        var kept = false;
        foreach (var row in await olds.Where(o => o.Language == article.Language && (o.Slug == slug || o.Slug == article.Slug)).ToListAsync(cancellationToken))
        {
            if (row.Slug == article.Slug)
                (row.ArticleId, kept) = (article.Id, true);
            else
                olds.Remove(row);
        }
        if (!kept)
            olds.Add(new ArticleOldSlugRecord { Language = article.Language, Slug = article.Slug, ArticleId = article.Id });
        article.Slug = slug;
    }

    /// <summary>The article that had this slug before an editor changed it (the help center redirects), if any.</summary>
    public async Task<ArticleRecord?> GetByOldSlugAsync(string language, string slug, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        var id = await db.Set<ArticleOldSlugRecord>().Where(o => o.Language == language && o.Slug == slug).Select(o => (Guid?)o.ArticleId).FirstOrDefaultAsync(cancellationToken);
        return id is null ? null : await db.KbArticles.AsNoTracking().FirstOrDefaultAsync(a => a.Id == id, cancellationToken);
    }

    /// <summary>Links an article to another language's article as its translation (it joins that article's group), or
    /// with <paramref name="translationOf"/> null unlinks it (a group of its own). One article per language in a
    /// group; a version check and a revision like every save.</summary>
    public Task<ArticleRecord> SetTranslationAsync(Guid id, int expectedVersion, Guid? translationOf, string actor, CancellationToken cancellationToken = default) =>
        ChangeAsync(id, expectedVersion, actor, translationOf is null ? "translation unlinked" : "translation linked", async (db, article) =>
        {
            if (translationOf is not { } otherId)
            {
                article.TranslationGroup = Guid.CreateVersion7();
                return;
            }
            var other = await db.KbArticles.AsNoTracking().Where(a => a.Id == otherId).Select(a => new { a.TranslationGroup, a.Language }).FirstOrDefaultAsync(cancellationToken)
                ?? throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, $"Article {otherId} does not exist.", "translationOf");
            if (other.Language == article.Language)
                throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, "A translation is an article in another language.", "translationOf");
            if (await db.KbArticles.AnyAsync(a => a.TranslationGroup == other.TranslationGroup && a.Language == article.Language && a.Id != article.Id, cancellationToken))
                throw new KnowledgeBaseException(KnowledgeBaseError.Conflict, $"That article already has a {article.Language} translation; unlink it first.", "translationOf");
            article.TranslationGroup = other.TranslationGroup;
        }, cancellationToken);

    /// <summary>Publish, unpublish (back to draft) or archive.</summary>
    public Task<ArticleRecord> SetStatusAsync(Guid id, int expectedVersion, string status, string actor, CancellationToken cancellationToken = default)
    {
        if (!ArticleStatus.IsValid(status))
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, "status must be draft, published or archived.", "status");
        var note = status switch { ArticleStatus.Published => "published", ArticleStatus.Archived => "archived", _ => "unpublished" };
        return ChangeAsync(id, expectedVersion, actor, note, (_, article) =>
        {
            if (status == ArticleStatus.Published)
                article.PublishedAt ??= time.GetUtcNow();
            article.Status = status;
            return Task.CompletedTask;
        }, cancellationToken);
    }

    /// <summary>Brings back the content (title, body, category, tags) of an earlier revision as a new revision; the
    /// status and the visibility stay, so restoring never publishes by surprise (published + public is what the world
    /// sees, so an internal article must not turn public because an old draft was public).</summary>
    public Task<ArticleRecord> RestoreAsync(Guid id, int revision, int expectedVersion, string actor, CancellationToken cancellationToken = default) =>
        ChangeAsync(id, expectedVersion, actor, $"restored from {revision}", async (db, article) =>
        {
            var old = await db.KbRevisions.AsNoTracking().FirstOrDefaultAsync(r => r.ArticleId == id && r.Version == revision, cancellationToken)
                ?? throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, $"Article {id} has no revision {revision}.", "revision");
            article.Title = old.Title;
            article.BodyMarkdown = old.BodyMarkdown;
            article.BodyHtml = Render(old.BodyMarkdown);
            article.BodyText = ToPlainText(old.BodyMarkdown);
            article.CategoryId = await db.KbCategories.AnyAsync(c => c.Id == old.CategoryId, cancellationToken) ? old.CategoryId : null;
            article.Tags = [.. old.Tags];
        }, cancellationToken);

    public async Task DeleteAsync(Guid id, int expectedVersion, string actor, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        var article = await db.KbArticles.FirstOrDefaultAsync(a => a.Id == id, cancellationToken)
            ?? throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, $"Article {id} does not exist.");
        RequireVersion(article, expectedVersion);
        var files = await db.Set<ArticleAttachmentRecord>().Where(a => a.ArticleId == id).Select(a => a.Sha256).ToListAsync(cancellationToken);
        db.KbArticles.Remove(article);
        db.Changes.Add(new ChangeRecord { Entity = ArticleChanges.Entity, EntityId = id.ToString("D"), Kind = ArticleChanges.Deleted, At = time.GetUtcNow() });
        // The revisions go in the same transaction as the article's removal (guarded by the version token): a crash,
        // or a concurrent save that makes the delete a conflict, leaves the history whole.
        await using (var transaction = await db.Database.BeginTransactionAsync(cancellationToken))
        {
            await db.KbRevisions.Where(r => r.ArticleId == id).ExecuteDeleteAsync(cancellationToken);
            await db.Set<ArticleAttachmentRecord>().Where(a => a.ArticleId == id).ExecuteDeleteAsync(cancellationToken);
            await db.Set<ArticleOldSlugRecord>().Where(o => o.ArticleId == id).ExecuteDeleteAsync(cancellationToken);
            await SaveAsync(db, cancellationToken, notify: false);
            await transaction.CommitAsync(cancellationToken);
        }
        signal.Notify();
        // After the commit: a crash before this leaves unreferenced bytes (harmless), never a row without its bytes.
        await BlobReferences.DeleteUnreferencedAsync(db, blobs, files, cancellationToken);
    }

    private async Task<ArticleRecord> ChangeAsync(Guid id, int expectedVersion, string actor, string note, Func<CrmDbContext, ArticleRecord, Task> change, CancellationToken cancellationToken)
    {
        await using var db = await OpenAsync(cancellationToken);
        var article = await db.KbArticles.FirstOrDefaultAsync(a => a.Id == id, cancellationToken)
            ?? throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, $"Article {id} does not exist.");
        RequireVersion(article, expectedVersion);
        await change(db, article);
        var now = time.GetUtcNow();
        article.UpdatedAt = now;
        article.UpdatedBy = actor;
        // The UPDATE's WHERE carries the version read above (concurrency token): a save that committed in between
        // makes it touch no row, and EF reports that as a concurrency conflict.
        article.Version = expectedVersion + 1;
        AddRevisionAndChange(db, article, note, ChangeKinds.Updated, now);
        await SaveAsync(db, cancellationToken);
        return article;
    }

    private static void RequireVersion(ArticleRecord article, int expectedVersion)
    {
        if (article.Version != expectedVersion)
            throw new KnowledgeBaseException(KnowledgeBaseError.Conflict,
                $"Article {article.Id} was saved by {article.UpdatedBy} at {article.UpdatedAt:u} (version {article.Version}) after you opened version {expectedVersion}. Reload it, compare, and save again.", "version");
    }

    private static void AddRevisionAndChange(CrmDbContext db, ArticleRecord article, string note, string kind, DateTimeOffset now)
    {
        db.KbRevisions.Add(new ArticleRevisionRecord
        {
            ArticleId = article.Id, Version = article.Version, Title = article.Title, BodyMarkdown = article.BodyMarkdown, CategoryId = article.CategoryId,
            Tags = [.. article.Tags], Status = article.Status, Visibility = article.Visibility, SavedBy = article.UpdatedBy, SavedAt = now, Note = note,
        });
        db.Changes.Add(new ChangeRecord { Entity = ArticleChanges.Entity, EntityId = article.Id.ToString("D"), Kind = kind, At = now });
    }

    private async Task SaveAsync(CrmDbContext db, CancellationToken cancellationToken, bool notify = true)
    {
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateConcurrencyException)
        {
            throw new KnowledgeBaseException(KnowledgeBaseError.Conflict, "Someone else saved this article a moment ago. Reload it, compare, and save again.", "version");
        }
        catch (DbUpdateException e) when (e.InnerException is Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 19 })
        {
            throw new KnowledgeBaseException(KnowledgeBaseError.Conflict, "Another article already uses that slug or translation language. Choose another.", "slug");
        }
        if (notify)
            signal.Notify();
    }

    public async Task<IReadOnlyList<ArticleRevisionRecord>> RevisionsAsync(Guid id, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        return await db.KbRevisions.AsNoTracking().Where(r => r.ArticleId == id).OrderByDescending(r => r.Version).ToListAsync(cancellationToken);
    }

    public async Task<ArticleRevisionRecord?> RevisionAsync(Guid id, int version, CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        return await db.KbRevisions.AsNoTracking().FirstOrDefaultAsync(r => r.ArticleId == id && r.Version == version, cancellationToken);
    }

    public async Task<IReadOnlyList<CategoryRecord>> CategoriesAsync(CancellationToken cancellationToken = default)
    {
        await using var db = await OpenAsync(cancellationToken);
        return await db.KbCategories.AsNoTracking().OrderBy(c => c.Position).ThenBy(c => c.Name).ToListAsync(cancellationToken);
    }

    public async Task<CategoryRecord> CreateCategoryAsync(string name, Guid? parentId, IReadOnlyDictionary<string, string>? names, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Length > 100)
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, "name is required (at most 100 characters).", "name");
        await using var db = await OpenAsync(cancellationToken);
        if (parentId is not null && !await db.KbCategories.AnyAsync(c => c.Id == parentId, cancellationToken))
            throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, $"Parent category {parentId} does not exist.", "parentId");
        var slug = Slugify(name);
        for (var n = 2; await db.KbCategories.AnyAsync(c => c.Slug == slug, cancellationToken); n++)
            slug = Slugify(name) + "-" + n.ToString(CultureInfo.InvariantCulture);
        var category = new CategoryRecord
        {
            Id = Guid.CreateVersion7(), ParentId = parentId, Name = name.Trim(), Slug = slug,
            Names = names?.Where(p => SearchLanguage(p.Key)).ToDictionary(p => p.Key, p => p.Value.Trim()) ?? [],
            Position = await db.KbCategories.CountAsync(cancellationToken),
        };
        db.KbCategories.Add(category);
        await db.SaveChangesAsync(cancellationToken);
        return category;
    }

    private static bool SearchLanguage(string language) => language is "en" or "zh-CN" or "zh-TW";

    /// <summary>The category and every category below it.</summary>
    private static async Task<HashSet<Guid>> DescendantsAsync(CrmDbContext db, Guid root, CancellationToken cancellationToken)
    {
        var all = await db.KbCategories.AsNoTracking().Select(c => new { c.Id, c.ParentId }).ToListAsync(cancellationToken);
        var found = new HashSet<Guid> { root };
        for (var grew = true; grew;)
        {
            grew = false;
            foreach (var c in all)
                if (c.ParentId is { } parent && found.Contains(parent) && found.Add(c.Id))
                    grew = true;
        }
        return found;
    }

    /// <summary>The category and its ancestors, root first (for search filters and breadcrumbs).</summary>
    public static IReadOnlyList<CategoryRecord> Path(IReadOnlyList<CategoryRecord> categories, Guid? id)
    {
        var byId = categories.ToDictionary(c => c.Id);
        var path = new List<CategoryRecord>();
        while (id is { } current && byId.TryGetValue(current, out var category) && path.Count < 32)
        {
            path.Insert(0, category);
            id = category.ParentId;
        }
        return path;
    }

    private static async Task RequireCategoryAsync(CrmDbContext db, Guid? categoryId, CancellationToken cancellationToken)
    {
        if (categoryId is { } id && !await db.KbCategories.AnyAsync(c => c.Id == id, cancellationToken))
            throw new KnowledgeBaseException(KnowledgeBaseError.NotFound, $"Category {id} does not exist.", "categoryId");
    }

    private static void Validate(ArticleDraft draft)
    {
        if (!SearchLanguage(draft.Language))
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, "language must be zh-CN, zh-TW or en.", "language");
        if (string.IsNullOrWhiteSpace(draft.Title) || draft.Title.Length > MaxTitleLength)
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, $"title is required (at most {MaxTitleLength} characters).", "title");
        if (draft.BodyMarkdown is null || draft.BodyMarkdown.Length > MaxBodyLength)
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, $"body is required (at most {MaxBodyLength} characters of Markdown).", "body");
        if (!ArticleVisibility.IsValid(draft.Visibility))
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, "visibility must be internal or public.", "visibility");
        if (draft.Tags is { Count: > MaxTags } || draft.Tags?.Any(t => string.IsNullOrWhiteSpace(t) || t.Length > 50) == true)
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, $"tags: at most {MaxTags}, each 1–50 characters.", "tags");
        // One limit with Slugify's cap (MaxSlugLength): a longer slug would fail "Slugify(slug) == slug" as if its
        // characters were wrong (review KB7).
        if (draft.Slug is not null && (draft.Slug.Length is 0 or > MaxSlugLength || Slugify(draft.Slug) != draft.Slug))
            throw new KnowledgeBaseException(KnowledgeBaseError.Invalid, $"slug may hold lower-case letters, digits, CJK characters and single hyphens (at most {MaxSlugLength} characters).", "slug");
    }

    private static List<string> NormalizeTags(IReadOnlyList<string>? tags) =>
        tags is null ? [] : [.. tags.Select(t => t.Trim().ToLowerInvariant()).Distinct(StringComparer.Ordinal)];

    /// <summary>A friendly URL segment: lower-case letters and digits (any script, so Chinese titles stay readable),
    /// words joined by single hyphens.</summary>
    public const int MaxSlugLength = 100;

    public static string Slugify(string text)
    {
        var slug = new StringBuilder();
        foreach (var c in text.Normalize(NormalizationForm.FormKC).ToLowerInvariant())
        {
            if (char.IsLetterOrDigit(c) && c < 0x10000)
                slug.Append(c);
            else if (slug.Length > 0 && slug[^1] != '-')
                slug.Append('-');
            if (slug.Length >= MaxSlugLength)
                break;
        }
        var result = slug.ToString().Trim('-');
        return result.Length == 0 ? "article" : result;
    }

    private static async Task<string> UniqueSlugAsync(CrmDbContext db, string language, string wanted, Guid? self, CancellationToken cancellationToken)
    {
        var root = Slugify(wanted);
        var slug = root;
        for (var n = 2; await db.KbArticles.AnyAsync(a => a.Language == language && a.Slug == slug && a.Id != self, cancellationToken); n++)
            slug = root + "-" + n.ToString(CultureInfo.InvariantCulture);
        return slug;
    }
}

/// <summary>A line diff between two revisions (longest common subsequence), for the history view.</summary>
public static class RevisionDiff
{
    public enum Op { Same, Added, Removed }

    public static IReadOnlyList<(Op Op, string Line)> Lines(string before, string after)
    {
        var a = before.Replace("\r\n", "\n").Split('\n');
        var b = after.Replace("\r\n", "\n").Split('\n');
        // Common head and tail first: edits are usually local, so the table stays small.
        var head = 0;
        while (head < a.Length && head < b.Length && a[head] == b[head]) head++;
        var tail = 0;
        while (tail < a.Length - head && tail < b.Length - head && a[^(tail + 1)] == b[^(tail + 1)]) tail++;
        var x = a[head..^tail];
        var y = b[head..^tail];
        var result = new List<(Op, string)>();
        result.AddRange(a[..head].Select(l => (Op.Same, l)));
        if ((long)x.Length * y.Length > 4_000_000)
        {
            result.AddRange(x.Select(l => (Op.Removed, l)));
            result.AddRange(y.Select(l => (Op.Added, l)));
        }
        else
        {
            var lcs = new int[x.Length + 1, y.Length + 1];
            for (var i = x.Length - 1; i >= 0; i--)
                for (var j = y.Length - 1; j >= 0; j--)
                    lcs[i, j] = x[i] == y[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
            int p = 0, q = 0;
            while (p < x.Length || q < y.Length)
            {
                if (p < x.Length && q < y.Length && x[p] == y[q]) { result.Add((Op.Same, x[p])); p++; q++; }
                // Removals before additions, as diff tools show a replaced line.
                else if (p < x.Length && (q == y.Length || lcs[p + 1, q] >= lcs[p, q + 1])) { result.Add((Op.Removed, x[p])); p++; }
                else { result.Add((Op.Added, y[q])); q++; }
            }
        }
        result.AddRange(a[^tail..].Select(l => (Op.Same, l)));
        return result;
    }
}
