using Crm.Service.Auth;
using Crm.Service.FullTextSearch;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Search;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Find;

/// <summary>
/// The console's full-text search box (/Find): tickets, messages and customers from the records index, for Agents
/// and Supervisors without restricted teams they are not in; knowledge-base articles for everyone signed in
/// (published ones; drafts and archived ones too for knowledge editors and admins). One engine for both
/// (Search:Engine), the same analysis, highlighting and ranking as the help center.
/// </summary>
public sealed class IndexModel(RecordSearch records, RecordAudiences audiences, ISearchIndex articles, ILogger<IndexModel> logger) : PageModel
{
    public const int PageSize = 20;

    [FromQuery(Name = "q")] public string? Query { get; set; }

    /// <summary>"ticket", "message", "customer", "article", or empty for all.</summary>
    [FromQuery(Name = "kind")] public string? Kind { get; set; }

    [FromQuery(Name = "skip")] public int Skip { get; set; }

    public bool SeesRecords { get; private set; }

    public bool Unavailable { get; private set; }

    public RecordResults? Records { get; private set; }

    public SearchResults? Articles { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (Query is { Length: > RecordSearch.MaxTextLength } || Kind is { Length: > 0 } && Kind != SearchKinds.Article && !SearchKinds.Records.Contains(Kind))
            return BadRequest();
        Skip = Math.Clamp(Skip, 0, SearchQuery.MaxSkip);
        var audience = await audiences.ForConsoleAsync(User, cancellationToken);
        SeesRecords = audience.SeesRecords;
        if (string.IsNullOrWhiteSpace(Query))
            return Page();
        try
        {
            if (Kind != SearchKinds.Article && SeesRecords)
                Records = await records.SearchAsync(audience, Query, string.IsNullOrEmpty(Kind) ? null : [Kind], Skip, PageSize, cancellationToken);
            if (string.IsNullOrEmpty(Kind) || Kind == SearchKinds.Article)
            {
                var editor = User.IsInRole(ConsoleRoles.KnowledgeEditor) || User.IsInRole(ConsoleRoles.Admin);
                Articles = await articles.SearchAsync(new SearchQuery(Query)
                {
                    Statuses = editor ? [ArticleStatus.Published, ArticleStatus.Draft, ArticleStatus.Archived] : [ArticleStatus.Published],
                    Skip = Skip,
                    Take = string.IsNullOrEmpty(Kind) ? 5 : PageSize,
                }, cancellationToken);
            }
        }
        catch (SearchUnavailableException e)
        {
            logger.LogWarning(e, "Console search failed: {Reason}", e.Message);
            Unavailable = true;
            Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        }
        return Page();
    }

    public string PageLink(int skip) =>
        $"/Find?q={Uri.EscapeDataString(Query ?? "")}{(string.IsNullOrEmpty(Kind) ? "" : "&kind=" + Uri.EscapeDataString(Kind))}&skip={skip}";
}
