using Crm.Connectors.Abstractions;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Search;

namespace Crm.Service.KnowledgeBase;

/// <summary>
/// The web chat widget's suggestions while a visitor types: published public articles only (what the help center
/// shows anyone), in the visitor's language family, linked to their help-center page.
/// </summary>
public sealed class HelpCenterSuggestions(ISearchIndex index, KnowledgeBaseStore store) : IArticleSuggestions
{
    /// <summary>Keeps the hits the store holds as published and public now. The index follows the store through the
    /// feed and is checked at start, but while it lags (a batch in flight, a rebuild of a restored copy still
    /// filling) an article unpublished or made internal must not reach anyone outside.</summary>
    public static async Task<SearchResults> PublicOnlyAsync(KnowledgeBaseStore store, SearchResults results, CancellationToken cancellationToken)
    {
        if (results.Hits.Count == 0)
            return results;
        var current = await store.PublicArticleIdsAsync(results.Hits.Select(h => h.Id), cancellationToken);
        var kept = results.Hits.Where(h => current.Contains(h.Id)).ToList();
        return kept.Count == results.Hits.Count ? results : new SearchResults(Math.Max(kept.Count, results.Total - (results.Hits.Count - kept.Count)), kept);
    }

    public async Task<IReadOnlyList<ArticleSuggestion>> SuggestAsync(string question, string? language, int max, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(question) || max <= 0)
            return [];
        var results = await PublicOnlyAsync(store, await index.SearchAsync(new SearchQuery(question)
        {
            Languages = LanguagesOf(language),
            Statuses = [ArticleStatus.Published],
            Visibilities = [ArticleVisibility.Public],
            Take = max,
        }, cancellationToken), cancellationToken);
        return [.. results.Hits.Where(hit => hit.Slug is not null).Select(hit => new ArticleSuggestion(
            hit.Title,
            $"/help/{Uri.EscapeDataString(hit.Language)}/articles/{Uri.EscapeDataString(hit.Slug!)}",
            hit.Snippet))];
    }

    // The widget names a family ("zh", "en"); an unknown one searches every language.
    private static IReadOnlyList<string> LanguagesOf(string? language) => language switch
    {
        not null when language.StartsWith("zh", StringComparison.OrdinalIgnoreCase) => [SearchLanguages.SimplifiedChinese, SearchLanguages.TraditionalChinese],
        not null when language.StartsWith("en", StringComparison.OrdinalIgnoreCase) => [SearchLanguages.English],
        _ => [],
    };
}
