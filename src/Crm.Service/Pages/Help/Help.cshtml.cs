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
    [FromRoute(Name = "lang")]
    public string? Lang { get; set; }

    public HelpText Text => HelpText.For(Lang ?? "en");

    protected static KnowledgeBaseStore.ArticleFilter Visible(string language) =>
        new(language, ArticleStatus.Published, ArticleVisibility.Public, Take: 200);

    protected bool ValidLanguage()
    {
        ViewData["Lang"] = Lang;
        return SearchLanguages.IsValid(Lang);
    }

    /// <summary>Sets ETag and Cache-Control from what the page shows; true when the browser's copy is still current (answer 304).</summary>
    protected bool NotModified(string state)
    {
        var tag = "\"" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(state)))[..32] + "\"";
        Response.Headers.ETag = tag;
        Response.Headers.CacheControl = $"public, max-age={(int)options.Value.HelpCacheDuration.TotalSeconds}";
        return Request.Headers.IfNoneMatch.Any(v => v is not null && v.Split(',').Any(t => t.Trim() == tag));
    }

    protected static string State(IEnumerable<ArticleRecord> articles) => string.Join(';', articles.Select(a => $"{a.Id}:{a.Version}"));
}

public sealed class IndexModel(KnowledgeBaseStore store, IOptions<KnowledgeBaseOptions> options) : HelpPage(options)
{
    public sealed record Section(CategoryRecord Category, string Name, IReadOnlyList<ArticleRecord> Articles);

    public IReadOnlyList<Section> Categories { get; private set; } = [];
    public IReadOnlyList<ArticleRecord> Uncategorized { get; private set; } = [];

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
        var articles = await store.ListAsync(Visible(Lang), cancellationToken);
        var categories = await store.CategoriesAsync(cancellationToken);
        if (NotModified(Lang + State(articles) + string.Join(';', categories.Select(c => c.Id + c.Name + string.Join(',', c.Names)))))
            return StatusCode(StatusCodes.Status304NotModified);
        // An article shows under its category's top-level ancestor.
        var top = articles.GroupBy(a => KnowledgeBaseStore.Path(categories, a.CategoryId).FirstOrDefault()?.Id).ToList();
        Categories = [.. categories.Where(c => c.ParentId is null)
            .Select(c => new Section(c, HelpText.CategoryName(c, Lang), [.. top.FirstOrDefault(g => g.Key == c.Id)?.OrderBy(a => a.Title) ?? Enumerable.Empty<ArticleRecord>()]))
            .Where(s => s.Articles.Count > 0)];
        Uncategorized = [.. top.FirstOrDefault(g => g.Key is null)?.OrderBy(a => a.Title) ?? Enumerable.Empty<ArticleRecord>()];
        return Page();
    }
}

public sealed class CategoryModel(KnowledgeBaseStore store, IOptions<KnowledgeBaseOptions> options) : HelpPage(options)
{
    [FromRoute]
    public string Slug { get; set; } = "";

    public string Name { get; private set; } = "";
    public IReadOnlyList<ArticleRecord> Articles { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (!ValidLanguage())
            return NotFound();
        var categories = await store.CategoriesAsync(cancellationToken);
        if (categories.FirstOrDefault(c => c.Slug == Slug) is not { } category)
            return NotFound();
        var articles = await store.ListAsync(Visible(Lang!) with { CategoryId = category.Id }, cancellationToken);
        if (NotModified(Lang + category.Id + category.Name + State(articles)))
            return StatusCode(StatusCodes.Status304NotModified);
        Name = HelpText.CategoryName(category, Lang!);
        Articles = [.. articles.OrderBy(a => a.Title)];
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
public sealed class SearchModel(ISearchIndex index, IOptions<KnowledgeBaseOptions> options) : HelpPage(options)
{
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
        Results = await index.SearchAsync(new SearchQuery(Query)
        {
            Languages = [Lang!],
            Statuses = [ArticleStatus.Published],
            Visibilities = [ArticleVisibility.Public],
            Take = 20,
        }, cancellationToken);
        Response.Headers.CacheControl = "public, max-age=30";
        return Page();
    }
}
