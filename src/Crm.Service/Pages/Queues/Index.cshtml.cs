using Crm.Service.AgentConsole;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Queues;

/// <summary>A queue page: the queue's filter plus the agent's own filters, keyset-paged through the read model, and the
/// queue sizes from <see cref="QueueCounts"/> (never a COUNT per page view).</summary>
public sealed class IndexModel(TicketQueries tickets, QueueCounts counts) : PageModel
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
    [FromQuery(Name = "cursor")] public string? Cursor { get; set; }

    public Page<TicketView> Tickets { get; private set; } = new([], null);

    public QueueCountsView Counts { get; private set; } = new(0, 0, 0, 0, 0);

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (!ModelState.IsValid)
            return BadRequest();
        TicketCursor? after = null;
        if (Cursor is not null)
        {
            if (!TicketCursor.TryDecode(Cursor, out var decoded))
                return BadRequest();
            after = decoded;
        }
        var me = User.Identity!.Name!;
        var filter = ConsoleQueues.Filter(Queue, me) with
        {
            Status = Status,
            Priority = Priority,
            CustomerId = Customer,
            Channel = string.IsNullOrWhiteSpace(Channel) ? null : Channel.Trim(),
            Tag = string.IsNullOrWhiteSpace(Tag) ? null : Tag.Trim().ToLowerInvariant(),
        };
        // The queue's own assignee (Mine, Unassigned) wins over the filter field.
        if (filter.Assignee is null && !string.IsNullOrWhiteSpace(Assignee))
            filter = filter with { Assignee = Assignee.Trim() == "-" ? "" : Assignee.Trim() };
        Tickets = await tickets.ListAsync(filter, after, PageSize, cancellationToken);
        Counts = await counts.GetAsync(me, cancellationToken);
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
            ["cursor"] = cursor,
        }.Where(p => !string.IsNullOrEmpty(p.Value)).ToDictionary(p => p.Key, p => p.Value);
        return Microsoft.AspNetCore.WebUtilities.QueryHelpers.AddQueryString($"/Queues/{queue}", query);
    }
}
