using System.Security.Claims;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Infrastructure.Teams;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.AgentConsole;

/// <summary>
/// Who may see which ticket in the console: a restricted team's tickets only its members, Supervisors and Admins;
/// every other ticket anyone with the tickets policy. Every page, handler and hub method that touches a ticket asks
/// here (hidden tickets answer 404, as if they did not exist), and every list filters by <see cref="HiddenTeamsAsync"/>.
/// </summary>
public sealed class TicketAccess(TeamDirectory teams, IDbContextFactory<CrmDbContext> contexts, QueueCounts counts)
{
    public static bool SeesEveryTeam(ClaimsPrincipal user) => user.IsInRole(ConsoleRoles.Supervisor) || user.IsInRole(ConsoleRoles.Admin);

    /// <summary>The console account id (AspNetUsers.Id) of a signed-in person.</summary>
    public static string UserId(ClaimsPrincipal user) =>
        user.FindFirstValue(ClaimTypes.NameIdentifier) ?? throw new InvalidOperationException("Not a console sign-in.");

    /// <summary>Restricted teams whose tickets this person may not see (none for Supervisors and Admins).</summary>
    public async Task<IReadOnlyList<string>> HiddenTeamsAsync(ClaimsPrincipal user, CancellationToken cancellationToken) =>
        SeesEveryTeam(user) ? [] : await teams.RestrictedTeamsWithoutAsync(UserId(user), cancellationToken);

    public async Task<bool> CanSeeTeamAsync(ClaimsPrincipal user, string? team, CancellationToken cancellationToken) =>
        team is null || !(await HiddenTeamsAsync(user, cancellationToken)).Contains(team, StringComparer.Ordinal);

    /// <summary>False when the ticket does not exist or belongs to a restricted team the person is not in.</summary>
    public async Task<bool> CanSeeTicketAsync(ClaimsPrincipal user, long number, CancellationToken cancellationToken)
    {
        string? team;
        await using (var db = await contexts.CreateDbContextAsync(cancellationToken))
        {
            var row = await db.Tickets.AsNoTracking().Where(t => t.Number == number).Select(t => new { t.Team }).FirstOrDefaultAsync(cancellationToken);
            if (row is null)
                return false;
            team = row.Team;
        }
        return await CanSeeTeamAsync(user, team, cancellationToken);
    }

    public Task<IReadOnlyList<string>> MyTeamsAsync(ClaimsPrincipal user, CancellationToken cancellationToken) =>
        teams.TeamsOfAsync(UserId(user), cancellationToken);

    /// <summary>The queue sizes as this person sees them (restricted teams they are not in left out).</summary>
    public async Task<QueueCountsView> CountsAsync(ClaimsPrincipal user, CancellationToken cancellationToken) =>
        await counts.GetAsync(user.Identity!.Name!, await MyTeamsAsync(user, cancellationToken), await HiddenTeamsAsync(user, cancellationToken), cancellationToken);
}
