using Crm.Service.AgentConsole;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Auth;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Queues;

/// <summary>A queue page: the queue's filter plus the agent's own filters, keyset-paged through the read model, and the
/// queue sizes from <see cref="QueueCounts"/> (never a COUNT per page view).</summary>
public sealed class IndexModel(TicketQueries tickets, TicketAccess access, TeamDirectory teamDirectory, IGrainFactory grains, ILogger<IndexModel> logger,
    Infrastructure.Replies.ReplyLibrary library, MacroRunner macros) : PageModel
{
    public const int MaxBulk = 100;

    public enum BulkAction
    {
        Assign,
        Status,
        Tag,
        Merge,
        Macro,
    }

    /// <summary>Macro: the macro to apply to each selected ticket.</summary>
    [BindProperty] public Guid? BulkMacro { get; set; }
    /// <summary>One rendered bulk form = one apply: a re-post of the same form sends each macro reply once; a freshly
    /// rendered form applies the macro again.</summary>
    [BindProperty] public Guid? BulkRequestId { get; set; }

    public IReadOnlyList<Infrastructure.Replies.MacroRecord> Macros { get; private set; } = [];

    [BindProperty] public List<long> Selected { get; set; } = [];
    [BindProperty] public BulkAction? Action { get; set; }
    /// <summary>Assign: a sign-in name, "me", or empty to unassign.</summary>
    [BindProperty, System.ComponentModel.DataAnnotations.StringLength(200)] public string? BulkAssignee { get; set; }
    [BindProperty] public TicketStatus? BulkStatus { get; set; }
    [BindProperty, System.ComponentModel.DataAnnotations.StringLength(64)] public string? BulkTag { get; set; }
    /// <summary>Merge: the selected tickets go into this one.</summary>
    [BindProperty] public long? MergeInto { get; set; }

    [TempData] public string? BulkResult { get; set; }

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

    /// <summary>True when the asked order was replaced by latest activity (tag and channel filters).</summary>
    public bool SortLimited { get; private set; }

    public QueueCountsView Counts { get; private set; } = new(0, 0, 0, 0, 0);

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        if (!ModelState.IsValid)
            return BadRequest();
        // A tag or channel queue is read in order only by latest activity (its projection's index); another order
        // would read and sort every ticket of that tag on each page (review console2 F10).
        if (Sort != TicketSort.Updated && (!string.IsNullOrWhiteSpace(Tag) || !string.IsNullOrWhiteSpace(Channel)))
        {
            Sort = TicketSort.Updated;
            SortLimited = true;
        }
        QueueCursor? after = null;
        if (Cursor is not null)
        {
            // A cursor of another sort order is refused like any made-up one.
            if (!QueueCursor.TryDecode(Cursor, Sort, out var decoded))
                return BadRequest();
            after = decoded;
        }
        Macros = await library.MacrosAsync(TicketAccess.UserId(User), cancellationToken);
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

    /// <summary>
    /// One action on the selected tickets, each through the same grain call as the ticket page, with per-ticket
    /// authorization (a ticket this person may not see is skipped as not found). Merging, which cannot be undone,
    /// needs a Supervisor. The result ("3 changed, 1 refused: …") shows on the queue page after the redirect.
    /// </summary>
    public async Task<IActionResult> OnPostBulkAsync(CancellationToken cancellationToken)
    {
        var selected = Selected.Distinct().ToList();
        if (selected.Count == 0 || Action is not { } action)
            return BulkDone("Select tickets and an action first.");
        if (selected.Count > MaxBulk)
            return BulkDone($"At most {MaxBulk} tickets at once.");
        if (action == BulkAction.Merge && !User.IsInRole(Auth.ConsoleRoles.Supervisor))
            return Forbid();
        if (!ModelState.IsValid)
            return BulkDone("The bulk action's fields are invalid.");
        TicketChange? change = action switch
        {
            BulkAction.Assign => new TicketChange { Assignee = BulkAssignee?.Trim() is "me" ? User.Identity!.Name! : BulkAssignee?.Trim() ?? "" },
            BulkAction.Status when BulkStatus is { } status && Enum.IsDefined(status) => new TicketChange { Status = status },
            _ => null,
        };
        if (action == BulkAction.Status && change is null)
            return BulkDone("Choose the status to set.");
        if (action == BulkAction.Tag && string.IsNullOrWhiteSpace(BulkTag))
            return BulkDone("Enter the tag to add.");
        Infrastructure.Replies.MacroRecord? macro = null;
        if (action == BulkAction.Macro)
        {
            macro = BulkMacro is { } macroId ? await library.FindMacroAsync(macroId, cancellationToken) : null;
            if (macro is null || (macro.OwnerId != Infrastructure.Replies.ReplyLibrary.Shared && macro.OwnerId != TicketAccess.UserId(User)))
                return BulkDone("Choose one of your macros or a shared one.");
        }
        var caller = new MacroCaller(User.ConsoleActor(), Api.AgentNames.Display(User.Identity!.Name!), User.Identity!.Name!);
        var macroRequest = $"console:{TicketAccess.UserId(User)}:{(BulkRequestId is { } form && form != Guid.Empty ? form : Guid.NewGuid()):N}:bulk";
        if (action == BulkAction.Merge && (MergeInto is not { } target || !await access.CanSeeTicketAsync(User, target, cancellationToken)))
            return BulkDone("Enter the number of a ticket to merge the selected ones into.");
        int done = 0;
        var refused = new List<string>();
        foreach (var number in selected)
        {
            if (!await access.CanSeeTicketAsync(User, number, cancellationToken))
            {
                refused.Add($"#{number}: no such ticket");
                continue;
            }
            try
            {
                var ticket = grains.GetGrain<ITicketGrain>(number);
                switch (action)
                {
                    case BulkAction.Tag:
                        // Added to the tags the ticket has when the grain runs it, so a tag added meanwhile is kept.
                        var tagged = new TicketChange { AddTags = [BulkTag!.Trim()] };
                        Grains.InputLimits.CheckTicketChange(tagged);
                        await ticket.ChangeAsync(tagged, User.ConsoleActor(), cancellationToken);
                        break;
                    case BulkAction.Macro:
                        if (await macros.ApplyAsync(macro!, number, caller, macroRequest, cancellationToken) is { Applied: false } macroResult)
                        {
                            refused.Add($"#{number}: {(macroResult.ReplySent ? "reply sent, then " : "")}{macroResult.Error}");
                            continue;
                        }
                        break;
                    case BulkAction.Merge:
                        if (number == MergeInto)
                            continue;
                        await grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Tickets).MergeTicketsAsync(number, MergeInto!.Value, User.ConsoleActor(), cancellationToken);
                        break;
                    default:
                        Grains.InputLimits.CheckTicketChange(change!);
                        await ticket.ChangeAsync(change!, User.ConsoleActor(), cancellationToken);
                        break;
                }
                done++;
            }
            catch (DomainException refusal)
            {
                refused.Add($"#{number}: {refusal.Message}");
            }
            catch (Exception failure) when (failure is not OperationCanceledException)
            {
                logger.LogWarning(failure, "Bulk {Action} failed on ticket {Number}", action, number);
                refused.Add($"#{number}: failed, try again");
            }
        }
        return BulkDone(refused.Count == 0 ? $"{done} changed." : $"{done} changed, {refused.Count} refused: {string.Join("; ", refused.Take(10))}");
    }

    private IActionResult BulkDone(string message)
    {
        BulkResult = message;
        return Redirect(Link(Queue));
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
