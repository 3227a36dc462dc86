using Crm.Service.Auth;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.AgentConsole;

/// <summary>The console accounts that time-driven notices (SLA, follow-ups) go to: people named by account id, email or
/// user name (API-key actors have no console), and every Supervisor when the notice escalates.</summary>
internal static class NotificationRecipients
{
    public static async Task<HashSet<string>> ResolveAsync(CrmDbContext db, IEnumerable<string?> people, bool supervisors, CancellationToken cancellationToken)
    {
        var ids = await PeopleAsync(db, people, cancellationToken);
        if (supervisors)
            ids.UnionWith(await InRoleAsync(db, ConsoleRoles.Supervisor, cancellationToken));
        return ids;
    }

    /// <summary>The console accounts of the people named; a personal API key's actor (<c>apikey:{email}/{label}</c>) is
    /// its owner, while system keys and unknown names resolve to nobody.</summary>
    public static async Task<HashSet<string>> PeopleAsync(CrmDbContext db, IEnumerable<string?> people, CancellationToken cancellationToken)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var person in people.OfType<string>().Where(p => p.Length > 0).Take(10))
        {
            if (person.StartsWith("apikey:", StringComparison.Ordinal))
            {
                var name = person["apikey:".Length..];
                // Revoked keys count too: the person recorded it. Two owners for one name (not made by PersonalApiKeys) is nobody.
                var owners = await db.ApiKeys.AsNoTracking().Where(k => k.Name == name && k.OwnerId != null)
                    .Select(k => k.OwnerId!).Distinct().Take(2).ToListAsync(cancellationToken);
                if (owners.Count == 1)
                    ids.Add(owners[0]);
                continue;
            }
            var upper = person.ToUpperInvariant();
            ids.UnionWith(await db.Users.AsNoTracking()
                .Where(u => u.Id == person || u.NormalizedEmail == upper || u.NormalizedUserName == upper)
                .Select(u => u.Id).Take(2).ToListAsync(cancellationToken));
        }
        return ids;
    }

    /// <summary>Someone who can act when nobody named is a console person (a follow-up an API key recorded): the ticket's
    /// assignee, else the members of the team (the notice's, else the ticket's), else the admins.</summary>
    public static async Task<HashSet<string>> WhoCanActAsync(CrmDbContext db, long? ticket, string? team, CancellationToken cancellationToken)
    {
        var record = ticket is { } number
            ? await db.Tickets.AsNoTracking().Where(t => t.Number == number).Select(t => new { t.Assignee, t.Team }).FirstOrDefaultAsync(cancellationToken)
            : null;
        if (record?.Assignee is { Length: > 0 } assignee && await PeopleAsync(db, [assignee], cancellationToken) is { Count: > 0 } assignees)
            return assignees;
        if ((team ?? record?.Team) is { Length: > 0 } teamId)
        {
            var members = await db.TeamMembers.AsNoTracking().Where(m => m.TeamId == teamId).Select(m => m.UserId).Take(200).ToListAsync(cancellationToken);
            if (members.Count > 0)
                return new HashSet<string>(members, StringComparer.Ordinal);
        }
        return await InRoleAsync(db, ConsoleRoles.Admin, cancellationToken);
    }

    private static async Task<HashSet<string>> InRoleAsync(CrmDbContext db, string role, CancellationToken cancellationToken) =>
        new(await db.UserRoles.AsNoTracking()
            .Join(db.Roles.Where(r => r.Name == role), ur => ur.RoleId, r => r.Id, (ur, _) => ur.UserId)
            .ToListAsync(cancellationToken), StringComparer.Ordinal);
}
