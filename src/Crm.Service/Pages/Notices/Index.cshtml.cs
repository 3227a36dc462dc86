using Crm.Service.AgentConsole;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Notifications;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.SignalR;

namespace Crm.Service.Pages.Notices;

/// <summary>The signed-in person's stored notices (SLA, follow-ups), newest first, keyset-paged by id; mark one or all
/// read. Only the person's own notices are read or changed (every query is by their account id).</summary>
public sealed class IndexModel(NoticeStore notices, IHubContext<AgentHub, IAgentClient> hub, ILogger<IndexModel> logger) : PageModel
{
    public IReadOnlyList<NoticeRecord> Items { get; private set; } = [];

    public int Unread { get; private set; }

    /// <summary>The id to page on from ("before" this notice), null on the last page.</summary>
    public long? Next { get; private set; }

    private string Me => TicketAccess.UserId(User);

    public async Task OnGetAsync(long? before, CancellationToken cancellationToken)
    {
        var page = await notices.ListAsync(Me, before, NoticeStore.PageSize + 1, cancellationToken);
        Items = [.. page.Take(NoticeStore.PageSize)];
        Next = page.Count > NoticeStore.PageSize ? Items[^1].Id : null;
        Unread = await notices.UnreadCountAsync(Me, cancellationToken);
    }

    public async Task<IActionResult> OnPostReadAsync(long id, CancellationToken cancellationToken)
    {
        await notices.MarkReadAsync(Me, id, cancellationToken);
        // The person's other tabs count down too (review CR7).
        await LivePush.BellAsync(hub, notices, Me, logger);
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostReadAllAsync(CancellationToken cancellationToken)
    {
        await notices.MarkReadAsync(Me, null, cancellationToken);
        await LivePush.BellAsync(hub, notices, Me, logger);
        return RedirectToPage();
    }

    /// <summary>Where a notice leads: its ticket, else its customer.</summary>
    public static string? LinkOf(NoticeRecord notice) =>
        notice.Ticket is > 0 ? $"/Tickets/{notice.Ticket}" : notice.CustomerId is { } customer ? $"/Customers/{customer}" : null;
}
