using System.Security.Claims;
using Crm.Connectors.Abstractions;
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

        var admin = endpoints.MapGroup("/api/v1/admin/kb").RequireAuthorization(ApiKeyAuthenticationExtensions.AdminPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        admin.MapPost("/reindex", (ReindexService reindex) =>
        {
            var started = reindex.TryStart(out _);
            return started ? Results.Accepted("/api/v1/admin/kb/reindex", reindex.Progress) : Problems.Of(ProblemKind.Conflict, "A reindex is already running; GET /api/v1/admin/kb/reindex shows its progress.");
        });
        admin.MapGet("/reindex", (ReindexService reindex, ISearchIndex index) => TypedResults.Ok(new { engine = index.Engine, progress = reindex.Progress }));
        return endpoints;
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
