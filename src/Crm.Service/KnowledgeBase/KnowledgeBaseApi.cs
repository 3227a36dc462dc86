using System.Security.Claims;
using Crm.Connectors.Abstractions;
using Crm.Service.Api;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Search;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Crm.Service.KnowledgeBase;

public sealed record ArticleRequest(string? Language, string? Title, string? Body, string? Visibility, Guid? CategoryId, string[]? Tags, string? Slug,
    Guid? TranslationOf, int? Version);

public sealed record VersionRequest(int? Version);

public sealed record CategoryRequest(string? Name, Guid? ParentId, Dictionary<string, string>? Names);

public sealed record TranslationView(Guid Id, string Language, string Slug, string Status);

public sealed record ArticleView(Guid Id, Guid TranslationGroup, string Language, string Title, string Slug, string Body, string Html, Guid? CategoryId,
    IReadOnlyList<string> Tags, string Status, string Visibility, string Author, string UpdatedBy, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    DateTimeOffset? PublishedAt, int Version, IReadOnlyList<TranslationView> Translations);

public sealed record RevisionView(int Version, string Title, string Body, string Status, string Visibility, IReadOnlyList<string> Tags, string SavedBy, DateTimeOffset SavedAt, string Note);

public sealed record DiffLine(string Op, string Line);

/// <summary>The knowledge base's REST API (/api/v1/kb): agents read published articles (internal and public);
/// knowledge editors and admins also read drafts, archived articles and the revision history, and write. Saves name
/// the version they edited (If-Match or "version").</summary>
public static class KnowledgeBaseApi
{
    public const string ReadPolicy = "kb-read";
    public const string WritePolicy = "kb-write";

    public static IEndpointRouteBuilder MapKnowledgeBaseApi(this IEndpointRouteBuilder endpoints)
    {
        var read = endpoints.MapGroup("/api/v1/kb").RequireAuthorization(ReadPolicy).RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        read.MapGet("/articles", ListAsync);
        read.MapGet("/articles/{id:guid}", GetAsync);
        read.MapGet("/categories", CategoriesAsync);
        read.MapGet("/search", SearchAsync);

        var write = endpoints.MapGroup("/api/v1/kb").RequireAuthorization(WritePolicy).RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        // History holds text an editor removed (drafts, a pasted secret taken out again): editors and admins only.
        write.MapGet("/articles/{id:guid}/revisions", RevisionsAsync);
        write.MapGet("/articles/{id:guid}/revisions/{version:int}", RevisionAsync);
        write.MapGet("/articles/{id:guid}/revisions/{version:int}/diff", DiffAsync);
        write.MapPost("/articles", CreateAsync);
        write.MapPut("/articles/{id:guid}", UpdateAsync);
        write.MapPost("/articles/{id:guid}/publish", (Guid id, VersionRequest? body, HttpContext http, KnowledgeBaseStore store, CancellationToken ct) =>
            StatusAsync(id, ArticleStatus.Published, body, http, store, ct));
        write.MapPost("/articles/{id:guid}/unpublish", (Guid id, VersionRequest? body, HttpContext http, KnowledgeBaseStore store, CancellationToken ct) =>
            StatusAsync(id, ArticleStatus.Draft, body, http, store, ct));
        write.MapPost("/articles/{id:guid}/archive", (Guid id, VersionRequest? body, HttpContext http, KnowledgeBaseStore store, CancellationToken ct) =>
            StatusAsync(id, ArticleStatus.Archived, body, http, store, ct));
        write.MapPost("/articles/{id:guid}/revisions/{version:int}/restore", RestoreAsync);
        write.MapDelete("/articles/{id:guid}", DeleteAsync);
        write.MapPost("/categories", CreateCategoryAsync);
        write.MapPut("/articles/{id:guid}/attachments/{fileName}", UploadAsync).LimitUploads();
        write.MapGet("/articles/{id:guid}/attachments", async (Guid id, KnowledgeBaseStore store, CancellationToken ct) =>
            TypedResults.Ok((await store.AttachmentsAsync(id, ct)).Select(AttachmentView)));
        write.MapDelete("/articles/{id:guid}/attachments/{attachmentId:guid}", async (Guid id, Guid attachmentId, KnowledgeBaseStore store, CancellationToken ct) =>
            await store.DeleteAttachmentAsync(id, attachmentId, ct) ? Results.NoContent() : Problems.NotFound("attachmentId", $"Article {id} has no attachment {attachmentId}."));

        // Attachments are served outside /api (images in article pages load them with the page's cookie, or none).
        // Its own, generous bucket: an article with many screenshots, or an office behind one address, must not run
        // into the help search's (and spend it).
        endpoints.MapGet("/kb/files/{attachmentId:guid}/{fileName}", ServeAttachmentAsync).AllowAnonymous()
            .RequireRateLimiting(KnowledgeBaseExtensions.FilesRateLimit);

        var admin = endpoints.MapGroup("/api/v1/admin/kb").RequireAuthorization(ApiKeyAuthenticationExtensions.AdminPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        // Idempotent: while a rebuild runs, another POST starts nothing and answers the running one (a double click,
        // a retried request), so the caller always gets 202 and where to follow it.
        admin.MapPost("/reindex", (ReindexService reindex, ISearchIndex index) =>
        {
            var started = reindex.TryStart(out _);
            return Results.Accepted("/api/v1/admin/kb/reindex", new { started, engine = index.Engine, progress = reindex.Progress });
        });
        admin.MapGet("/reindex", (ReindexService reindex, ISearchIndex index) => TypedResults.Ok(new { engine = index.Engine, progress = reindex.Progress }));
        FullTextSearch.RecordSearchExtensions.MapRecordSearchApi(endpoints);
        return endpoints;
    }

    private static object AttachmentView(ArticleAttachmentRecord a)
    {
        var url = KnowledgeBaseStore.AttachmentPath(a.Id, a.FileName);
        return new
        {
            a.Id, a.FileName, a.ContentType, a.Size, a.UploadedBy, a.UploadedAt, url,
            markdown = AttachmentMarkdown(a),
        };
    }

    /// <summary>What an editor pastes (or the editor page inserts): an image for images, a link for other files. The
    /// name's Markdown characters are escaped so "[x](javascript:…)" in a file name stays text.</summary>
    public static string AttachmentMarkdown(ArticleAttachmentRecord a)
    {
        var url = KnowledgeBaseStore.AttachmentPath(a.Id, a.FileName);
        var label = System.Text.RegularExpressions.Regex.Replace(a.FileName, @"([\\`*_{}\[\]()#+\-.!<>|])", @"\$1");
        return a.ContentType.StartsWith("image/", StringComparison.Ordinal) ? $"![{label}]({url})" : $"[{label}]({url})";
    }

    /// <summary>PUT the file's bytes with its Content-Type: refused before reading when Content-Length is over the
    /// limit (413), and while reading when a body without a length grows past it.</summary>
    internal static async Task<IResult> UploadAsync(Guid id, string fileName, HttpContext http, KnowledgeBaseStore store,
        Microsoft.Extensions.Options.IOptions<KnowledgeBaseOptions> options, CancellationToken ct)
    {
        var limit = options.Value.MaxAttachmentBytes;
        if (http.Request.ContentLength > limit)
            return TooLarge(limit);
        var contentType = (http.Request.ContentType ?? "").Split(';')[0].Trim().ToLowerInvariant();
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > limit)
                return TooLarge(limit);
            buffer.Write(chunk, 0, read);
        }
        if (buffer.Length == 0)
            return Problems.Invalid("body", "The request body is empty: PUT the file's bytes with its Content-Type.");
        try
        {
            var attachment = await store.AddAttachmentAsync(id, fileName, contentType, buffer.GetBuffer().AsMemory(0, (int)buffer.Length), Actor(http.User), ct);
            return TypedResults.Created(KnowledgeBaseStore.AttachmentPath(attachment.Id, attachment.FileName), AttachmentView(attachment));
        }
        catch (KnowledgeBaseException e)
        {
            return Refusal(e);
        }
    }

    private static IResult TooLarge(long limit) => TypedResults.Problem(
        $"The file is larger than {limit / 1024 / 1024} MB (KnowledgeBase:MaxAttachmentBytes); make it smaller or link to it.",
        statusCode: StatusCodes.Status413PayloadTooLarge, title: "File too large");

    /// <summary>Anyone may load the files of a published public article; an internal one's only agents (signed in to
    /// the console), a draft's or archived one's only editors and admins. Everything else is 404, as on the help
    /// center. nosniff and a sandboxing CSP: a file is shown as what it was checked to be, and never runs.</summary>
    internal static async Task<IResult> ServeAttachmentAsync(Guid attachmentId, string fileName, HttpContext http, KnowledgeBaseStore store,
        Microsoft.Extensions.Options.IOptions<KnowledgeBaseOptions> options, CancellationToken ct)
    {
        if (await store.AttachmentAsync(attachmentId, ct) is not { } found || found.Attachment.FileName != fileName)
            return Results.NotFound();
        var (attachment, status, visibility) = found;
        var user = http.User;
        var isPublic = status == ArticleStatus.Published && visibility == ArticleVisibility.Public;
        var allowed = isPublic
            || status == ArticleStatus.Published && (user.IsInRole(ConsoleRoles.Agent) || user.IsInRole(ConsoleRoles.Supervisor) || user.IsInRole(ConsoleRoles.Admin) || user.IsInRole(ConsoleRoles.KnowledgeEditor))
            || user.IsInRole(ConsoleRoles.Admin) || user.IsInRole(ConsoleRoles.KnowledgeEditor);
        if (!allowed || store.OpenBlob(attachment.Sha256) is not { } stream)
            return Results.NotFound();
        var headers = http.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers.ContentSecurityPolicy = "default-src 'none'; sandbox";
        // Shared caches only for anonymous readers (a signed-in reader's response may renew the session cookie), and
        // no longer than help pages: an article made internal stops serving its images from caches as soon as its pages.
        headers.CacheControl = !isPublic ? "private, no-store"
            : user.Identity?.IsAuthenticated == true ? "private, no-cache"
            : $"public, max-age={(int)options.Value.HelpCacheDuration.TotalSeconds}";
        var inline = attachment.ContentType.StartsWith("image/", StringComparison.Ordinal);
        headers.ContentDisposition = new System.Net.Mime.ContentDisposition { Inline = inline, FileName = attachment.FileName }.ToString();
        return Results.Stream(stream, attachment.ContentType, enableRangeProcessing: true);
    }

    internal static string Actor(ClaimsPrincipal user) =>
        user.Identity?.AuthenticationType == ApiKeyAuthenticationHandler.SchemeName ? "apikey:" + user.Identity.Name : user.ConsoleActor();

    internal static IResult Refusal(KnowledgeBaseException e) => e.Kind switch
    {
        KnowledgeBaseError.NotFound => Problems.Of(ProblemKind.NotFound, e.Message, e.Field),
        KnowledgeBaseError.Conflict => Problems.Of(ProblemKind.Conflict, e.Message, e.Field),
        _ => Problems.Invalid(e.Field ?? "body", e.Message),
    };

    /// <summary>The version a save edits: If-Match ("3" or W/"3") or the body's "version".</summary>
    private static int? ExpectedVersion(HttpContext http, int? fromBody)
    {
        var ifMatch = http.Request.Headers.IfMatch.ToString().Replace("W/", "", StringComparison.Ordinal).Trim('"', ' ');
        return int.TryParse(ifMatch, out var version) ? version : fromBody;
    }

    private static IResult VersionRequired() =>
        Problems.Invalid("version", "Say which version you edited: If-Match: \"<version>\" or \"version\" in the body (GET the article for its current version).");

    public static async Task<ArticleView> ViewAsync(ArticleRecord a, KnowledgeBaseStore store, CancellationToken ct)
    {
        var translations = await store.TranslationsAsync(a.TranslationGroup, ct);
        return new ArticleView(a.Id, a.TranslationGroup, a.Language, a.Title, a.Slug, a.BodyMarkdown, a.BodyHtml, a.CategoryId, a.Tags, a.Status, a.Visibility,
            a.Author, a.UpdatedBy, a.CreatedAt, a.UpdatedAt, a.PublishedAt, a.Version,
            [.. translations.Where(t => t.Id != a.Id).Select(t => new TranslationView(t.Id, t.Language, t.Slug, t.Status))]);
    }

    private static async Task<IResult> Saved(ArticleRecord article, KnowledgeBaseStore store, HttpContext http, CancellationToken ct, bool created = false)
    {
        http.Response.Headers.ETag = $"\"{article.Version}\"";
        var view = await ViewAsync(article, store, ct);
        return created ? TypedResults.Created($"/api/v1/kb/articles/{article.Id}", view) : TypedResults.Ok(view);
    }

    private static bool IsEditor(ClaimsPrincipal user) => user.IsInRole(Roles.KnowledgeEditor) || user.IsInRole(Roles.Admin);

    internal static async Task<IResult> ListAsync(KnowledgeBaseStore store, HttpContext http, string? language, string? status, string? visibility, Guid? category, string? tag,
        int? skip, int? take, CancellationToken ct)
    {
        // Agents see published articles only, as in search; drafts and archived ones are the editors' business.
        if (!IsEditor(http.User))
        {
            if (status is not null && status != ArticleStatus.Published)
                return Problems.Invalid("status", "status must be published (or, for knowledge editors, draft or archived).");
            status = ArticleStatus.Published;
        }
        var rows = await store.ListAsync(new KnowledgeBaseStore.ArticleFilter(language, status, visibility, category, tag, skip ?? 0, take ?? 50), ct);
        return TypedResults.Ok(rows.Select(a => new { a.Id, a.Language, a.Title, a.Slug, a.Status, a.Visibility, a.CategoryId, a.Tags, a.UpdatedAt, a.UpdatedBy, a.Version }));
    }

    internal static async Task<IResult> GetAsync(Guid id, KnowledgeBaseStore store, HttpContext http, CancellationToken ct)
    {
        var article = await store.GetAsync(id, ct);
        // A draft or archived article does not exist for agents (404, as on the help center).
        return article is null || article.Status != ArticleStatus.Published && !IsEditor(http.User)
            ? Problems.NotFound("id", $"Article {id} does not exist.")
            : await Saved(article, store, http, ct);
    }

    internal static async Task<IResult> CreateAsync(ArticleRequest request, KnowledgeBaseStore store, HttpContext http, CancellationToken ct)
    {
        try
        {
            var article = await store.CreateAsync(Draft(request), Actor(http.User), ct);
            return await Saved(article, store, http, ct, created: true);
        }
        catch (KnowledgeBaseException e)
        {
            return Refusal(e);
        }
    }

    private static ArticleDraft Draft(ArticleRequest r) =>
        new(r.Language ?? "", r.Title ?? "", r.Body ?? "", r.Visibility ?? ArticleVisibility.Internal, r.CategoryId, r.Tags, r.Slug, r.TranslationOf);

    internal static async Task<IResult> UpdateAsync(Guid id, ArticleRequest request, KnowledgeBaseStore store, HttpContext http, CancellationToken ct)
    {
        if (ExpectedVersion(http, request.Version) is not { } version)
            return VersionRequired();
        var current = await store.GetAsync(id, ct);
        if (current is null)
            return Problems.NotFound("id", $"Article {id} does not exist.");
        try
        {
            // The language is fixed at creation; a save may leave it out.
            var article = await store.UpdateAsync(id, version, Draft(request with { Language = request.Language ?? current.Language }), Actor(http.User), ct);
            return await Saved(article, store, http, ct);
        }
        catch (KnowledgeBaseException e)
        {
            return Refusal(e);
        }
    }

    private static async Task<IResult> StatusAsync(Guid id, string status, VersionRequest? body, HttpContext http, KnowledgeBaseStore store, CancellationToken ct)
    {
        if (ExpectedVersion(http, body?.Version) is not { } version)
            return VersionRequired();
        try
        {
            return await Saved(await store.SetStatusAsync(id, version, status, Actor(http.User), ct), store, http, ct);
        }
        catch (KnowledgeBaseException e)
        {
            return Refusal(e);
        }
    }

    internal static async Task<IResult> RestoreAsync(Guid id, int version, VersionRequest? body, HttpContext http, KnowledgeBaseStore store, CancellationToken ct)
    {
        if (ExpectedVersion(http, body?.Version) is not { } expected)
            return VersionRequired();
        try
        {
            return await Saved(await store.RestoreAsync(id, version, expected, Actor(http.User), ct), store, http, ct);
        }
        catch (KnowledgeBaseException e)
        {
            return Refusal(e);
        }
    }

    internal static async Task<IResult> DeleteAsync(Guid id, HttpContext http, KnowledgeBaseStore store, CancellationToken ct)
    {
        if (ExpectedVersion(http, null) is not { } version)
            return VersionRequired();
        try
        {
            await store.DeleteAsync(id, version, Actor(http.User), ct);
            return TypedResults.NoContent();
        }
        catch (KnowledgeBaseException e)
        {
            return Refusal(e);
        }
    }

    internal static async Task<IResult> RevisionsAsync(Guid id, KnowledgeBaseStore store, CancellationToken ct) =>
        TypedResults.Ok((await store.RevisionsAsync(id, ct)).Select(ToView));

    private static RevisionView ToView(ArticleRevisionRecord r) => new(r.Version, r.Title, r.BodyMarkdown, r.Status, r.Visibility, r.Tags, r.SavedBy, r.SavedAt, r.Note);

    internal static async Task<IResult> RevisionAsync(Guid id, int version, KnowledgeBaseStore store, CancellationToken ct) =>
        await store.RevisionAsync(id, version, ct) is { } revision ? TypedResults.Ok(ToView(revision)) : Problems.NotFound("version", $"Article {id} has no revision {version}.");

    /// <summary>Lines of revision {version} against revision "against" (default: the one before it), title first.</summary>
    internal static async Task<IResult> DiffAsync(Guid id, int version, int? against, KnowledgeBaseStore store, CancellationToken ct)
    {
        var after = await store.RevisionAsync(id, version, ct);
        var before = await store.RevisionAsync(id, against ?? version - 1, ct);
        if (after is null || before is null)
            return Problems.NotFound("version", $"Article {id} has no revision {(after is null ? version : against ?? version - 1)}.");
        var lines = RevisionDiff.Lines("# " + before.Title + "\n" + before.BodyMarkdown, "# " + after.Title + "\n" + after.BodyMarkdown);
        return TypedResults.Ok(new { from = before.Version, to = after.Version, lines = lines.Select(l => new DiffLine(l.Op.ToString().ToLowerInvariant(), l.Line)) });
    }

    internal static async Task<IResult> CategoriesAsync(KnowledgeBaseStore store, CancellationToken ct) =>
        TypedResults.Ok((await store.CategoriesAsync(ct)).Select(c => new { c.Id, c.ParentId, c.Name, c.Names, c.Slug }));

    internal static async Task<IResult> CreateCategoryAsync(CategoryRequest request, KnowledgeBaseStore store, CancellationToken ct)
    {
        try
        {
            var category = await store.CreateCategoryAsync(request.Name ?? "", request.ParentId, request.Names, ct);
            return TypedResults.Created($"/api/v1/kb/categories/{category.Id}", new { category.Id, category.ParentId, category.Name, category.Names, category.Slug });
        }
        catch (KnowledgeBaseException e)
        {
            return Refusal(e);
        }
    }

    /// <summary>Agents search published articles, internal and public; editors may ask for other statuses.</summary>
    internal static async Task<IResult> SearchAsync(ISearchIndex index, HttpContext http, string? q, string? language, Guid? category, string? status,
        string? visibility, int? skip, int? take, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(q) || q.Length > 500)
            return Problems.Invalid("q", "q is required (at most 500 characters).");
        if (language is not null && !SearchLanguages.IsValid(language))
            return Problems.Invalid("language", "language must be zh-CN, zh-TW or en.");
        var editor = IsEditor(http.User);
        if (status is not null && (!ArticleStatus.IsValid(status) || !editor && status != ArticleStatus.Published))
            return Problems.Invalid("status", "status must be published (or, for knowledge editors, draft or archived).");
        if (visibility is not null && !ArticleVisibility.IsValid(visibility))
            return Problems.Invalid("visibility", "visibility must be internal or public.");
        if (skip is < 0 or > SearchQuery.MaxSkip)
            return Problems.Invalid("skip", $"skip must be between 0 and {SearchQuery.MaxSkip}; narrow the search instead of paging deeper.");
        try
        {
            var results = await index.SearchAsync(new SearchQuery(q)
            {
                Languages = language is null ? [] : [language],
                Statuses = [status ?? ArticleStatus.Published],
                Visibilities = visibility is null ? [] : [visibility],
                Category = category?.ToString("D"),
                Skip = skip ?? 0,
                Take = Math.Clamp(take ?? 10, 1, 50),
            }, ct);
            return TypedResults.Ok(new { total = results.Total, hits = results.Hits.Select(h => new { h.Id, h.Title, h.Snippet, h.Language, h.Slug, h.Visibility, h.Status, h.Score }) });
        }
        catch (SearchUnavailableException e)
        {
            return TypedResults.Problem(e.Message, statusCode: StatusCodes.Status503ServiceUnavailable, title: "Search unavailable");
        }
    }
}
