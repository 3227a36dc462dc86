using System.Security.Cryptography;
using System.Text;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.KnowledgeBase;
using Crm.Service.Search;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Crm.Service.Pages.Help;

/// <summary>What every help-center page shares: the language from the route, caching with ETag, only published public articles.</summary>
public abstract class HelpPage(IOptions<KnowledgeBaseOptions> options) : PageModel
{
    /// <summary>Articles a category page (and the "other articles" list) shows at a time; the index shows a few per category.</summary>
    public const int PageSize = 50;
    public const int SectionSize = 10;

    [FromRoute(Name = "lang")]
    public string? Lang { get; set; }

    /// <summary>1-based page of a paged list (?page=2).</summary>
    [FromQuery(Name = "page")]
    public int PageNumber { get; set; } = 1;

    public HelpText Text => HelpText.For(Lang ?? "en");

    protected static KnowledgeBaseStore.ArticleFilter Visible(string language) =>
        new(language, ArticleStatus.Published, ArticleVisibility.Public, ByTitle: true);

    protected bool ValidLanguage()
    {
        ViewData["Lang"] = Lang;
        PageNumber = Math.Clamp(PageNumber, 1, 100_000);
        return SearchLanguages.IsValid(Lang);
    }

    /// <summary>Sets ETag and Cache-Control from what the page shows; true when the browser's copy is still current (answer 304).
    /// Callers pass a cheap fingerprint (a <see cref="KnowledgeBaseStore.ListStamp"/>), read before any article row.</summary>
    protected bool NotModified(string state)
    {
        var tag = "\"" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(state)))[..32] + "\"";
        Response.Headers.ETag = tag;
        Response.Headers.CacheControl = PageCacheControl();
        return Request.Headers.IfNoneMatch.Any(v => v is not null && v.Split(',').Any(t => t.Trim() == tag));
    }

    /// <summary>The pages' Cache-Control (KnowledgeBase:HelpCacheDuration).</summary>
    protected string PageCacheControl() => CacheControl((int)options.Value.HelpCacheDuration.TotalSeconds);

    /// <summary>Shared caches may keep a page only when it was answered to an anonymous visitor: for a signed-in agent
    /// the cookie handler may renew the session cookie (Set-Cookie) on this very response.</summary>
    protected string CacheControl(int seconds) =>
        User.Identity?.IsAuthenticated == true ? "private, no-cache" : $"public, max-age={seconds}";

    protected static string State(KnowledgeBaseStore.ListStamp stamp) => $"{stamp.Count}:{stamp.Versions}:{stamp.LastUpdate}";

    protected static string State(IEnumerable<ArticleRecord> articles) => string.Join(';', articles.Select(a => $"{a.Id}:{a.Version}"));

    protected static string State(IEnumerable<CategoryRecord> categories) =>
        string.Join(';', categories.Select(c => c.Id + c.Name + c.ParentId + string.Join(',', c.Names)));

    public int PageCount(int count) => Math.Max(1, (count + PageSize - 1) / PageSize);
}

public sealed class IndexModel(KnowledgeBaseStore store, IOptions<KnowledgeBaseOptions> options) : HelpPage(options)
{
    /// <summary>A top-level category with its first articles by title and how many it holds (its page lists them all).</summary>
    public sealed record Section(CategoryRecord Category, string Name, IReadOnlyList<KnowledgeBaseStore.ArticleSummary> Articles, int Count);

    public IReadOnlyList<Section> Categories { get; private set; } = [];
    public IReadOnlyList<KnowledgeBaseStore.ArticleSummary> Uncategorized { get; private set; } = [];
    public int UncategorizedCount { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (Lang is null)
        {
            // /help: the visitor's language from Accept-Language.
            Response.Headers.Vary = "Accept-Language";
            return Redirect("/help/" + HelpText.FromAcceptLanguage(Request.Headers.AcceptLanguage.ToString()));
        }
        if (!ValidLanguage())
            return NotFound();
        var categories = await store.CategoriesAsync(cancellationToken);
        var visible = Visible(Lang);
        var stamp = await store.StampAsync(visible, cancellationToken);
        if (NotModified($"{Lang}|{PageNumber}|{State(stamp)}|{State(categories)}"))
            return StatusCode(StatusCodes.Status304NotModified);
        // An article shows under its category's top-level ancestor (the filter includes the categories below).
        var sections = new List<Section>();
        foreach (var top in categories.Where(c => c.ParentId is null))
        {
            var filter = visible with { CategoryId = top.Id };
            var count = (await store.StampAsync(filter, cancellationToken)).Count;
            if (count > 0)
                sections.Add(new Section(top, HelpText.CategoryName(top, Lang), await store.ListAsync(filter with { Take = SectionSize }, cancellationToken), count));
        }
        Categories = sections;
        // Articles without a category (or whose category is gone) have no category page: this list is paged here.
        var uncategorized = visible with { Uncategorized = true };
        UncategorizedCount = (await store.StampAsync(uncategorized, cancellationToken)).Count;
        Uncategorized = await store.ListAsync(uncategorized with { Skip = (PageNumber - 1) * PageSize, Take = PageSize }, cancellationToken);
        return Page();
    }
}

public sealed class CategoryModel(KnowledgeBaseStore store, IOptions<KnowledgeBaseOptions> options) : HelpPage(options)
{
    [FromRoute]
    public string Slug { get; set; } = "";

    public string Name { get; private set; } = "";
    public IReadOnlyList<KnowledgeBaseStore.ArticleSummary> Articles { get; private set; } = [];
    public int Count { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (!ValidLanguage())
            return NotFound();
        var categories = await store.CategoriesAsync(cancellationToken);
        if (categories.FirstOrDefault(c => c.Slug == Slug) is not { } category)
            return NotFound();
        var filter = Visible(Lang!) with { CategoryId = category.Id };
        var stamp = await store.StampAsync(filter, cancellationToken);
        if (NotModified($"{Lang}|{PageNumber}|{State(stamp)}|{State(categories)}"))
            return StatusCode(StatusCodes.Status304NotModified);
        Name = HelpText.CategoryName(category, Lang!);
        Count = stamp.Count;
        Articles = await store.ListAsync(filter with { Skip = (PageNumber - 1) * PageSize, Take = PageSize }, cancellationToken);
        return Page();
    }
}

public sealed class ArticleModel(KnowledgeBaseStore store, IOptions<KnowledgeBaseOptions> options) : HelpPage(options)
{
    [FromRoute]
    public string Slug { get; set; } = "";

    public ArticleRecord Article { get; private set; } = null!;
    public IReadOnlyList<CategoryRecord> Path { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (!ValidLanguage())
            return NotFound();
        var article = await store.GetBySlugAsync(Lang!, Slug, cancellationToken);
        // An address from before an editor changed the slug: 301 to the current one. Only for an article the public may
        // see, so an old address never reveals an internal or draft article's new slug.
        // A 301 without Cache-Control is kept by browsers and shared caches for good: renaming back (a→b→a) would
        // then loop, and an old slug another article takes later would keep redirecting. It expires like the pages
        // (review KB3).
        if (article is null && await store.GetByOldSlugAsync(Lang!, Slug, cancellationToken) is { Status: ArticleStatus.Published, Visibility: ArticleVisibility.Public } moved)
        {
            Response.Headers.CacheControl = PageCacheControl();
            return RedirectPermanent($"/help/{moved.Language}/articles/{Uri.EscapeDataString(moved.Slug)}");
        }
        // Drafts, archived and internal articles do not exist for the public: 404, not 403.
        if (article is not { Status: ArticleStatus.Published, Visibility: ArticleVisibility.Public })
            return NotFound();
        var translations = (await store.TranslationsAsync(article.TranslationGroup, cancellationToken))
            .Where(t => t.Status == ArticleStatus.Published && t.Visibility == ArticleVisibility.Public).ToList();
        if (NotModified(State(translations)))
            return StatusCode(StatusCodes.Status304NotModified);
        Article = article;
        Path = KnowledgeBaseStore.Path(await store.CategoriesAsync(cancellationToken), article.CategoryId);
        // The language switch goes to this article's translation where there is one.
        ViewData["LanguageLinks"] = translations.ToDictionary(t => t.Language, t => $"/help/{t.Language}/articles/{Uri.EscapeDataString(t.Slug)}");
        return Page();
    }
}

[EnableRateLimiting(KnowledgeBaseExtensions.HelpSearchRateLimit)]
public sealed class SearchModel(ISearchIndex index, KnowledgeBaseStore store, IOptions<KnowledgeBaseOptions> options, ILogger<SearchModel> logger) : HelpPage(options)
{
    public bool Unavailable { get; private set; }

    [FromQuery(Name = "q")]
    public string? Query { get; set; }

    public SearchResults? Results { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (!ValidLanguage())
            return NotFound();
        ViewData["Query"] = Query;
        if (string.IsNullOrWhiteSpace(Query))
            return Page();
        if (Query.Length > 200)
            Query = Query[..200];
        try
        {
            Results = await HelpCenterSuggestions.PublicOnlyAsync(store, await index.SearchAsync(new SearchQuery(Query)
            {
                Languages = [Lang!],
                Statuses = [ArticleStatus.Published],
                Visibilities = [ArticleVisibility.Public],
                Take = 20,
            }, cancellationToken), cancellationToken);
        }
        catch (SearchUnavailableException e)
        {
            // The engine (Elasticsearch) is down or refused: a page that says so, not a 500, and nothing cached.
            logger.LogWarning(e, "Help-center search failed: {Reason}", e.Message);
            Unavailable = true;
            Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            Response.Headers.CacheControl = "no-store";
            return Page();
        }
        Response.Headers.CacheControl = CacheControl(30);
        return Page();
    }
}
