using System.Text.RegularExpressions;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Teams;

/// <summary>A team of agents. Tickets name their team by <see cref="Id"/> (TicketRecord.Team). A restricted team's
/// tickets are seen only by its members, Supervisors and Admins.</summary>
public sealed class TeamRecord
{
    public required string Id { get; set; }
    public required string Name { get; set; }
    public bool Restricted { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>A person (console account id, AspNetUsers.Id) in a team.</summary>
public sealed class TeamMemberRecord
{
    public required string TeamId { get; set; }
    public required string UserId { get; set; }
}

/// <summary>A team with its members' account ids.</summary>
public sealed record TeamView(string Id, string Name, bool Restricted, IReadOnlyList<string> MemberIds, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>
/// Teams and their members in the store. Deliberately uncached: who may see a restricted team's tickets is read per
/// request (one indexed query), so removing a member takes effect at once on every node.
/// </summary>
public sealed partial class TeamDirectory(IDbContextFactory<CrmDbContext> contexts, StoreInitializer store, TimeProvider time)
{
    public const int MaxNameLength = 100;
    public const int MaxMembers = 1000;

    /// <summary>1-64 lower-case letters, digits or '-', like channel ids: it appears in URLs and in ticket rows.</summary>
    public static bool IsValidId(string? id) => id is not null && IdPattern().IsMatch(id);

    [GeneratedRegex("^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
    private static partial Regex IdPattern();

    public async Task<IReadOnlyList<TeamView>> ListAsync(CancellationToken cancellationToken)
    {
        await store.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var teams = await db.Teams.AsNoTracking().OrderBy(t => t.Name).ToListAsync(cancellationToken);
        var members = (await db.TeamMembers.AsNoTracking().ToListAsync(cancellationToken)).ToLookup(m => m.TeamId);
        return [.. teams.Select(t => View(t, members[t.Id]))];
    }

    public async Task<TeamView?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await store.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var team = await db.Teams.AsNoTracking().FirstOrDefaultAsync(t => t.Id == id, cancellationToken);
        if (team is null)
            return null;
        var members = await db.TeamMembers.AsNoTracking().Where(m => m.TeamId == id).ToListAsync(cancellationToken);
        return View(team, members);
    }

    /// <summary>Creates or replaces a team with exactly these members (account ids, checked by the caller).</summary>
    public async Task<(TeamView Team, bool Created)> SaveAsync(string id, string name, bool restricted, IReadOnlyCollection<string> memberIds, CancellationToken cancellationToken)
    {
        if (!IsValidId(id))
            throw new ArgumentException("A team id is 1-64 lower-case letters, digits or '-'.", nameof(id));
        await store.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var now = time.GetUtcNow();
        var team = await db.Teams.FirstOrDefaultAsync(t => t.Id == id, cancellationToken);
        var created = team is null;
        if (team is null)
        {
            team = new TeamRecord { Id = id, Name = name, Restricted = restricted, CreatedAt = now, UpdatedAt = now };
            db.Teams.Add(team);
        }
        else
        {
            team.Name = name;
            team.Restricted = restricted;
            team.UpdatedAt = now;
        }
        var wanted = memberIds.ToHashSet(StringComparer.Ordinal);
        var current = await db.TeamMembers.Where(m => m.TeamId == id).ToListAsync(cancellationToken);
        db.TeamMembers.RemoveRange(current.Where(m => !wanted.Contains(m.UserId)));
        foreach (var userId in wanted.Except(current.Select(m => m.UserId)))
            db.TeamMembers.Add(new TeamMemberRecord { TeamId = id, UserId = userId });
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return (View(team, wanted.Select(u => new TeamMemberRecord { TeamId = id, UserId = u })), created);
    }

    /// <summary>Deletes the team and its memberships. Tickets keep the id in their Team field (no longer restricted).</summary>
    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await store.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        await db.TeamMembers.Where(m => m.TeamId == id).ExecuteDeleteAsync(cancellationToken);
        var deleted = await db.Teams.Where(t => t.Id == id).ExecuteDeleteAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return deleted > 0;
    }

    /// <summary>The teams a person belongs to.</summary>
    public async Task<IReadOnlyList<string>> TeamsOfAsync(string userId, CancellationToken cancellationToken)
    {
        await store.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.TeamMembers.AsNoTracking().Where(m => m.UserId == userId).Select(m => m.TeamId).OrderBy(t => t).ToListAsync(cancellationToken);
    }

    /// <summary>Restricted teams the person is not a member of: their tickets are hidden from an Agent.</summary>
    public async Task<IReadOnlyList<string>> RestrictedTeamsWithoutAsync(string userId, CancellationToken cancellationToken)
    {
        await store.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Teams.AsNoTracking()
            .Where(t => t.Restricted && !db.TeamMembers.Any(m => m.TeamId == t.Id && m.UserId == userId))
            .Select(t => t.Id).ToListAsync(cancellationToken);
    }

    /// <summary>For each of these team ids that is a restricted team: its members (who may see its tickets besides Supervisors and Admins).</summary>
    public async Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> RestrictedMembersAsync(IReadOnlyCollection<string> teamIds, CancellationToken cancellationToken)
    {
        if (teamIds.Count == 0)
            return new Dictionary<string, IReadOnlyList<string>>();
        await store.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var restricted = await db.Teams.AsNoTracking().Where(t => t.Restricted && teamIds.Contains(t.Id)).Select(t => t.Id).ToListAsync(cancellationToken);
        var members = (await db.TeamMembers.AsNoTracking().Where(m => restricted.Contains(m.TeamId)).ToListAsync(cancellationToken)).ToLookup(m => m.TeamId);
        return restricted.ToDictionary(t => t, t => (IReadOnlyList<string>)[.. members[t].Select(m => m.UserId)], StringComparer.Ordinal);
    }

    private static TeamView View(TeamRecord team, IEnumerable<TeamMemberRecord> members) =>
        new(team.Id, team.Name, team.Restricted, [.. members.Select(m => m.UserId).Order(StringComparer.Ordinal)], team.CreatedAt, team.UpdatedAt);
}
