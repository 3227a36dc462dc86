using System.Security.Claims;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Hubs;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.AgentConsole;

/// <summary>
/// @mentions in internal notes: "@alice@example.com" (a sign-in email) or "@alice" (the part before the @ of exactly
/// one person's email) name a person. Mentioned people who may see the ticket get a notification over the hub;
/// names that match nobody, several people, or someone who may not see the ticket are reported back, not notified.
/// </summary>
public sealed partial class Mentions(IDbContextFactory<CrmDbContext> contexts, IHubContext<AgentHub, IAgentClient> hub, TeamDirectoryAccess access,
    Infrastructure.Notifications.NotificationSettingsStore settings)
{
    public const int MaxMentionsPerNote = 20;

    [GeneratedRegex(@"(?<![\w@.])@([A-Za-z0-9._%+-]{1,64}(?:@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,})?)")]
    private static partial Regex MentionPattern();

    public static IReadOnlyList<string> Parse(string text) =>
        [.. MentionPattern().Matches(text).Select(m => m.Groups[1].Value.TrimEnd('.')).Distinct(StringComparer.OrdinalIgnoreCase).Take(MaxMentionsPerNote)];

    public sealed record Resolved(IReadOnlyList<(string UserId, string Email)> People, IReadOnlyList<string> Unknown);

    /// <summary>Resolves the names to people who may see the ticket's team.</summary>
    public async Task<Resolved> ResolveAsync(IReadOnlyList<string> names, string? ticketTeam, CancellationToken cancellationToken)
    {
        var people = new List<(string, string)>();
        var unknown = new List<string>();
        if (names.Count == 0)
            return new(people, unknown);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        foreach (var name in names)
        {
            var upper = name.ToUpperInvariant();
            var matches = name.Contains('@')
                ? await db.Users.AsNoTracking().Where(u => u.NormalizedEmail == upper).Select(u => new { u.Id, u.Email }).Take(2).ToListAsync(cancellationToken)
                : await db.Users.AsNoTracking().Where(u => u.NormalizedEmail!.StartsWith(upper + "@")).Select(u => new { u.Id, u.Email }).Take(2).ToListAsync(cancellationToken);
            if (matches.Count == 1 && await access.MaySeeTeamAsync(matches[0].Id, ticketTeam, cancellationToken))
                people.Add((matches[0].Id, matches[0].Email!));
            else
                unknown.Add(name);
        }
        return new(people, unknown);
    }

    /// <summary>Pushes the mention to those of <paramref name="userIds"/> who have not turned mentions off (Profile).</summary>
    public async Task NotifyAsync(IEnumerable<string> userIds, AgentNotification notification)
    {
        var wanting = await settings.WhoWantsAsync(userIds, Infrastructure.Notifications.NotificationCategory.Mention, CancellationToken.None);
        if (wanting.Count > 0)
            await hub.Clients.Users([.. wanting]).Notify(notification);
    }
}

/// <summary>Whether a person (by account id, not the current request) may see a team's tickets: for notifications.</summary>
public sealed class TeamDirectoryAccess(Infrastructure.Teams.TeamDirectory teams, IDbContextFactory<CrmDbContext> contexts)
{
    public async Task<bool> MaySeeTeamAsync(string userId, string? team, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // Only people who work tickets at all: Agent or Supervisor.
        var roles = await db.UserRoles.AsNoTracking().Where(r => r.UserId == userId)
            .Join(db.Roles, ur => ur.RoleId, r => r.Id, (_, r) => r.Name!).ToListAsync(cancellationToken);
        if (!roles.Contains(ConsoleRoles.Agent) && !roles.Contains(ConsoleRoles.Supervisor))
            return false;
        if (team is null || roles.Contains(ConsoleRoles.Supervisor) || roles.Contains(ConsoleRoles.Admin))
            return true;
        return !(await teams.RestrictedTeamsWithoutAsync(userId, cancellationToken)).Contains(team, StringComparer.Ordinal);
    }
}
