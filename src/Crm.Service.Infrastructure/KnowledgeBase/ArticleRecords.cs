using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.KnowledgeBase;

public static class ArticleStatus
{
    public const string Draft = "draft";
    public const string Published = "published";
    public const string Archived = "archived";

    public static bool IsValid(string? status) => status is Draft or Published or Archived;
}

public static class ArticleVisibility
{
    /// <summary>Agents only (console, agent API).</summary>
    public const string Internal = "internal";
    /// <summary>Also the public help center and the web-chat suggestions, once published.</summary>
    public const string Public = "public";

    public static bool IsValid(string? visibility) => visibility is Internal or Public;
}

/// <summary>A knowledge-base article in one language (table KbArticles). Translations share <see cref="TranslationGroup"/>.
/// <see cref="Version"/> counts saves and is the optimistic-concurrency token: a save names the version it edited.</summary>
public sealed class ArticleRecord
{
    public Guid Id { get; set; }
    public Guid TranslationGroup { get; set; }
    public required string Language { get; set; }
    public required string Title { get; set; }
    /// <summary>Unique per language; the help center's friendly URL.</summary>
    public required string Slug { get; set; }
    public required string BodyMarkdown { get; set; }
    /// <summary>Markdig's rendering of the body, sanitized with the one HTML policy; never the editor's raw HTML.</summary>
    public required string BodyHtml { get; set; }
    /// <summary>The rendered body as plain text: what search indexes and snippets show.</summary>
    public required string BodyText { get; set; }
    public Guid? CategoryId { get; set; }
    public List<string> Tags { get; set; } = [];
    public required string Status { get; set; }
    public required string Visibility { get; set; }
    public required string Author { get; set; }
    public required string UpdatedBy { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public DateTimeOffset? PublishedAt { get; set; }
    public int Version { get; set; }
}

/// <summary>One saved state of an article (table KbRevisions): every save, publish, unpublish and restore adds one.</summary>
public sealed class ArticleRevisionRecord
{
    public Guid ArticleId { get; set; }
    public int Version { get; set; }
    public required string Title { get; set; }
    public required string BodyMarkdown { get; set; }
    public Guid? CategoryId { get; set; }
    public List<string> Tags { get; set; } = [];
    public required string Status { get; set; }
    public required string Visibility { get; set; }
    public required string SavedBy { get; set; }
    public DateTimeOffset SavedAt { get; set; }
    /// <summary>What the save did: "created", "edited", "published", "unpublished", "archived", "restored from 3".</summary>
    public required string Note { get; set; }
}

/// <summary>A help-center category (table KbCategories); categories form a tree through <see cref="ParentId"/>.</summary>
public sealed class CategoryRecord
{
    public Guid Id { get; set; }
    public Guid? ParentId { get; set; }
    public required string Name { get; set; }
    /// <summary>Name per language ("zh-CN" → "账单"), falling back to <see cref="Name"/>.</summary>
    public Dictionary<string, string> Names { get; set; } = [];
    public required string Slug { get; set; }
    public int Position { get; set; }
}

/// <summary>A file uploaded with an article (table KbAttachments): the bytes are a content-addressed blob, served at
/// <c>/kb/files/{Id}/{FileName}</c> under the article's visibility.</summary>
public sealed class ArticleAttachmentRecord
{
    public Guid Id { get; set; }
    public Guid ArticleId { get; set; }
    public required string FileName { get; set; }
    /// <summary>One of <see cref="KnowledgeBaseStore.AttachmentTypes"/>, checked against the file's first bytes.</summary>
    public required string ContentType { get; set; }
    public long Size { get; set; }
    public required string Sha256 { get; set; }
    public required string UploadedBy { get; set; }
    public DateTimeOffset UploadedAt { get; set; }
}

/// <summary>A slug an article had before an editor changed it (table KbOldSlugs): the help center answers the old
/// address with a redirect to the current one, so links people saved keep working. A slug taken by a live article is
/// removed from here (the live one wins).</summary>
public sealed class ArticleOldSlugRecord
{
    public required string Language { get; set; }
    public required string Slug { get; set; }
    public Guid ArticleId { get; set; }
}

internal static class KnowledgeBaseModel
{
    public static void Configure(ModelBuilder model)
    {
        var tags = new Microsoft.EntityFrameworkCore.ChangeTracking.ValueComparer<List<string>>(
            (a, b) => a!.SequenceEqual(b!), v => v.Aggregate(0, (h, s) => HashCode.Combine(h, s.GetHashCode())), v => v.ToList());
        model.Entity<ArticleRecord>(e =>
        {
            e.ToTable("KbArticles");
            e.HasKey(a => a.Id);
            e.Property(a => a.Version).IsConcurrencyToken();
            e.Property(a => a.Tags).HasConversion(v => System.Text.Json.JsonSerializer.Serialize(v, System.Text.Json.JsonSerializerOptions.Default),
                v => System.Text.Json.JsonSerializer.Deserialize<List<string>>(v, System.Text.Json.JsonSerializerOptions.Default) ?? new(), tags);
            e.HasIndex(a => new { a.Language, a.Slug }).IsUnique();
            e.HasIndex(a => new { a.TranslationGroup, a.Language }).IsUnique();
            e.HasIndex(a => new { a.Status, a.UpdatedAt });
            e.HasIndex(a => a.CategoryId);
        });
        model.Entity<ArticleRevisionRecord>(e =>
        {
            e.ToTable("KbRevisions");
            e.HasKey(r => new { r.ArticleId, r.Version });
            e.Property(a => a.Tags).HasConversion(v => System.Text.Json.JsonSerializer.Serialize(v, System.Text.Json.JsonSerializerOptions.Default),
                v => System.Text.Json.JsonSerializer.Deserialize<List<string>>(v, System.Text.Json.JsonSerializerOptions.Default) ?? new(), tags);
        });
        model.Entity<ArticleAttachmentRecord>(e =>
        {
            e.ToTable("KbAttachments");
            e.HasKey(a => a.Id);
            e.HasIndex(a => a.ArticleId);
        });
        model.Entity<ArticleOldSlugRecord>(e =>
        {
            e.ToTable("KbOldSlugs");
            e.HasKey(o => new { o.Language, o.Slug });
            e.HasIndex(o => o.ArticleId);
        });
        model.Entity<CategoryRecord>(e =>
        {
            e.ToTable("KbCategories");
            e.HasKey(c => c.Id);
            e.HasIndex(c => c.Slug).IsUnique();
            e.HasIndex(c => c.ParentId);
            e.Property(c => c.Names).HasConversion(v => System.Text.Json.JsonSerializer.Serialize(v, System.Text.Json.JsonSerializerOptions.Default),
                v => System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(v, System.Text.Json.JsonSerializerOptions.Default) ?? new(),
                new Microsoft.EntityFrameworkCore.ChangeTracking.ValueComparer<Dictionary<string, string>>(
                    (a, b) => a!.Count == b!.Count && !a.Except(b).Any(), v => v.Count, v => new Dictionary<string, string>(v)));
        });
    }
}
