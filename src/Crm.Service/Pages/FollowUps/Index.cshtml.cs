using Crm.Service.AgentConsole;
using Crm.Service.Api;
using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.FollowUps;

/// <summary>Due follow-ups (next follow-up due by now and not done), earliest first, for me (the default) or one of my
/// teams (any team for Supervisors and Admins), keyset-paged like the API; close one from here (same rule as the API).</summary>
public sealed class IndexModel(IRoutingStore documents, IGrainFactory grains, IDbContextFactory<CrmDbContext> contexts,
    TimeProvider time) : PageModel
{
    public const int PageSize = 50;

    public IReadOnlyList<CustomerFollowUp> Items { get; private set; } = [];
    public IReadOnlyList<string> MyTeams { get; private set; } = [];
    public string? Team { get; private set; }
    public string? Next { get; private set; }

    public async Task<IActionResult> OnGetAsync(string? team, string? cursor, CancellationToken cancellationToken)
    {
        var me = TicketAccess.UserId(User);
        IReadOnlyList<string> myNames;
        await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
        {
            MyTeams = await db.TeamMembers.AsNoTracking().Where(m => m.UserId == me).Select(m => m.TeamId).OrderBy(t => t).ToListAsync(cancellationToken);
            myNames = (await CustomerFollowUpApi.CloserScope.LoadAsync(CustomerFollowUpApi.Closer.Of(User), db, cancellationToken)).Names;
        }
        if (!string.IsNullOrEmpty(team))
        {
            // A team's list is for its members (and Supervisors/Admins, who see every team).
            if (!TicketAccess.SeesEveryTeam(User) && !MyTeams.Contains(team, StringComparer.OrdinalIgnoreCase))
                return Forbid();
            Team = team;
        }
        var list = $"console:{Team}";
        (string Key, string Id)? after = null;
        if (cursor is not null && (after = FollowUpCursor.Decode(cursor, list)) is null)
            return BadRequest();
        // "Mine": owned under my sign-in name, resolved to my account when recorded (RT5), or owned under any other name
        // of mine, read now: my email, account id or a personal key's actor `apikey:{email}/{label}` (the API's default
        // owner). The names also find entries recorded before the owner was resolved (FX7).
        var owner = Team is null ? User.Identity!.Name : null;
        var rows = (await documents.DueFollowUpsAsync(time.GetUtcNow(), owner, Team, after?.Key, after?.Id, PageSize + 1, cancellationToken,
                Team is null ? me : null, Team is null ? myNames : null))
            .Select(RoutingJson.Read<CustomerFollowUp>).ToList();
        Items = [.. rows.Take(PageSize)];
        Next = rows.Count > PageSize ? FollowUpCursor.Encode(list, Items[^1].NextDueAt!.Value, Items[^1].Id) : null;
        return Page();
    }

    public async Task<IActionResult> OnPostDoneAsync(Guid id, string? team, CancellationToken cancellationToken)
    {
        if (await grains.GetGrain<ICustomerFollowUpGrain>(id).GetAsync() is not { } entry)
            return NotFound();
        var closer = CustomerFollowUpApi.Closer.Of(User);
        if (!await CustomerFollowUpApi.MayCloseAsync(entry, closer, contexts, cancellationToken))
            return Forbid();
        await CustomerFollowUpApi.CloseAsync(grains, contexts, time, entry, closer.Actor, cancellationToken);
        return RedirectToPage(new { team });
    }
}
