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
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var person in people.OfType<string>().Where(p => p.Length > 0 && !p.StartsWith("apikey:", StringComparison.Ordinal)).Take(10))
        {
            var upper = person.ToUpperInvariant();
            ids.UnionWith(await db.Users.AsNoTracking()
                .Where(u => u.Id == person || u.NormalizedEmail == upper || u.NormalizedUserName == upper)
                .Select(u => u.Id).Take(2).ToListAsync(cancellationToken));
        }
        if (supervisors)
            ids.UnionWith(await db.UserRoles.AsNoTracking()
                .Join(db.Roles.Where(r => r.Name == ConsoleRoles.Supervisor), ur => ur.RoleId, r => r.Id, (ur, _) => ur.UserId)
                .ToListAsync(cancellationToken));
        return ids;
    }
}
