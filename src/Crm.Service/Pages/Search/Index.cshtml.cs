using Crm.Service.AgentConsole;
using Crm.Service.Infrastructure.Queries;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Search;

/// <summary>Tickets, customers and messages matching the text (through <see cref="IConsoleSearch"/>), without the
/// tickets and messages of restricted teams the person is not in.</summary>
public sealed class IndexModel(IConsoleSearch search, TicketAccess access) : PageModel
{
    [FromQuery(Name = "q")] public string? Query { get; set; }

    public SearchResults? Results { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (Query is { Length: > SqlConsoleSearch.MaxTextLength })
            return BadRequest();
        if (!string.IsNullOrWhiteSpace(Query))
            Results = await search.SearchAsync(new SearchRequest(Query, 20, await access.HiddenTeamsAsync(User, cancellationToken)), cancellationToken);
        return Page();
    }
}
