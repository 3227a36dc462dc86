using Crm.Service.AgentConsole;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Teams;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Queues;

/// <summary>A queue page: the queue's filter plus the agent's own filters, keyset-paged through the read model, and the
/// queue sizes from <see cref="QueueCounts"/> (never a COUNT per page view).</summary>
public sealed class IndexModel(TicketQueries tickets, TicketAccess access, TeamDirectory teamDirectory) : PageModel
{
    public const int PageSize = 50;

    [FromRoute(Name = "queue")]
    public ConsoleQueue Queue { get; set; } = ConsoleQueue.Open;

    [FromQuery(Name = "status")] public TicketStatus? Status { get; set; }
    [FromQuery(Name = "priority")] public TicketPriority? Priority { get; set; }
    [FromQuery(Name = "assignee")] public string? Assignee { get; set; }
    [FromQuery(Name = "customer")] public Guid? Customer { get; set; }
    [FromQuery(Name = "channel")] public string? Channel { get; set; }
    [FromQuery(Name = "tag")] public string? Tag { get; set; }
    [FromQuery(Name = "team")] public string? Team { get; set; }
    [FromQuery(Name = "sort")] public TicketSort Sort { get; set; } = TicketSort.Updated;
    [FromQuery(Name = "cursor")] public string? Cursor { get; set; }

    /// <summary>The teams this person may filter by (restricted teams they are not in are left out).</summary>
    public IReadOnlyList<TeamView> Teams { get; private set; } = [];

    public Page<TicketView> Tickets { get; private set; } = new([], null);

    public QueueCountsView Counts { get; private set; } = new(0, 0, 0, 0, 0);

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (!ModelState.IsValid)
            return BadRequest();
        QueueCursor? after = null;
        if (Cursor is not null)
        {
            // A cursor of another sort order is refused like any made-up one.
            if (!QueueCursor.TryDecode(Cursor, Sort, out var decoded))
                return BadRequest();
            after = decoded;
        }
        var me = User.Identity!.Name!;
        var hidden = await access.HiddenTeamsAsync(User, cancellationToken);
        var filter = ConsoleQueues.Filter(Queue, me, await access.MyTeamsAsync(User, cancellationToken)) with
        {
            Status = Status,
            Priority = Priority,
            CustomerId = Customer,
            Channel = string.IsNullOrWhiteSpace(Channel) ? null : Channel.Trim(),
            Tag = string.IsNullOrWhiteSpace(Tag) ? null : Tag.Trim().ToLowerInvariant(),
            Team = string.IsNullOrWhiteSpace(Team) ? null : Team.Trim() == "-" ? "" : Team.Trim(),
            HiddenTeams = hidden,
        };
        // The queue's own assignee (Mine, Unassigned) wins over the filter field.
        if (filter.Assignee is null && !string.IsNullOrWhiteSpace(Assignee))
            filter = filter with { Assignee = Assignee.Trim() == "-" ? "" : Assignee.Trim() };
        Tickets = await tickets.ListAsync(filter, Sort, after, PageSize, cancellationToken);
        Counts = await access.CountsAsync(User, cancellationToken);
        Teams = [.. (await teamDirectory.ListAsync(cancellationToken)).Where(t => !hidden.Contains(t.Id))];
        return Page();
    }

    /// <summary>The same filters with another cursor (or none).</summary>
    public string Link(ConsoleQueue queue, string? cursor = null)
    {
        var query = new Dictionary<string, string?>
        {
            ["status"] = queue == Queue ? Status?.ToString() : null,
            ["priority"] = Priority?.ToString(),
            ["assignee"] = Assignee,
            ["customer"] = Customer?.ToString(),
            ["channel"] = Channel,
            ["tag"] = Tag,
            ["team"] = Team,
            ["sort"] = Sort == TicketSort.Updated ? null : Sort.ToString(),
            ["cursor"] = cursor,
        }.Where(p => !string.IsNullOrEmpty(p.Value)).ToDictionary(p => p.Key, p => p.Value);
        return Microsoft.AspNetCore.WebUtilities.QueryHelpers.AddQueryString($"/Queues/{queue}", query);
    }
}
