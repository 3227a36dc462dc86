using Crm.Connectors.Abstractions;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Search;

namespace Crm.Service.KnowledgeBase;

/// <summary>
/// The web chat widget's suggestions while a visitor types: published public articles only (what the help center
/// shows anyone), in the visitor's language family, linked to their help-center page.
/// </summary>
public sealed class HelpCenterSuggestions(ISearchIndex index) : IArticleSuggestions
{
    public async Task<IReadOnlyList<ArticleSuggestion>> SuggestAsync(string question, string? language, int max, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(question) || max <= 0)
            return [];
        var results = await index.SearchAsync(new SearchQuery(question)
        {
            Languages = LanguagesOf(language),
            Statuses = [ArticleStatus.Published],
            Visibilities = [ArticleVisibility.Public],
            Take = max,
        }, cancellationToken);
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
