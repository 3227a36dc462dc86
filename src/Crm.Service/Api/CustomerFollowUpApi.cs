using System.Security.Claims;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Grains.FollowUps;
using Crm.Service.Grains.Sla;
using Crm.Service.Auth;
using Crm.Service.AgentConsole;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Api;

/// <summary>POST body of a follow-up log entry.</summary>
public sealed record CustomerFollowUpRequest(
    FollowUpChannel? How, DateTimeOffset? At, string? Outcome, DateTimeOffset? NextDueAt, string? Owner, string? Team, long? Ticket);

/// <summary>The customer follow-up log: <c>/api/v1/customers/{id}/follow-ups</c> and the due lists
/// <c>/api/v1/follow-ups/due?owner=&amp;team=</c>, both keyset-paged (<c>cursor</c>, <c>pageSize</c> 1-200, default 50;
/// <c>{items, nextCursor, hasMore}</c>) and read a page at a time from the routing store. Marking an entry done, by hand or
/// by hand, is for its author or owner, a member of its team or of the owner's team, or an admin key; recording a newer
/// entry closes only the caller's own (author or owner) or, for an admin key, any; a POST with an Idempotency-Key records one
/// entry however often it is sent, and a replay closes nothing recorded after the entry.</summary>
internal static class CustomerFollowUpApi
{
    public const int MaxOutcomeLength = 4000;
    public const int MaxPageSize = 200;
    public const int DefaultPageSize = 50;

    // The offset parameter is refused on every list, as on the ticket list (docs/api.md), rather than ignored (RR12).
    private static IResult? PageParameter(HttpRequest http) =>
        http.Query.ContainsKey("page") ? Problems.Invalid("page", "page is not supported: pass the nextCursor of the previous page as cursor.") : null;

    public static void Map(RouteGroupBuilder api)
    {
        api.MapGet("/customers/{id:guid}/follow-ups", async (Guid id, string? cursor, int? pageSize, HttpRequest http, IRoutingStore documents, ClaimsPrincipal user,
            Infrastructure.Teams.TeamDirectory teams, IDbContextFactory<CrmDbContext> contexts, CancellationToken ct) =>
        {
            if (PageParameter(http) is { } refused)
                return refused;
            if (pageSize is < 1 or > MaxPageSize)
                return Problems.Invalid("pageSize", $"pageSize is 1-{MaxPageSize}.");
            var list = "c:" + id.ToString("N");
            (string Key, string Id)? after = null;
            if (cursor is not null && (after = FollowUpCursor.Decode(cursor, list)) is null)
                return Problems.Invalid("cursor", "The cursor is malformed or belongs to another list.");
            var size = pageSize ?? DefaultPageSize;
            var rows = (await documents.CustomerFollowUpsAsync(id, false, after?.Key, after?.Id, size + 1, ct)).Select(RoutingJson.Read<CustomerFollowUp>).ToList();
            return Results.Ok(await VisibleAsync(PageOf(rows, size, list, f => f.At), user, teams, contexts, ct));
        });
        api.MapPost("/customers/{id:guid}/follow-ups", RecordAsync);
        api.MapPost("/follow-ups/{id:guid}/done", CompleteAsync);
        api.MapGet("/follow-ups/due", async (string? owner, string? team, DateTimeOffset? until, string? cursor, int? pageSize, IRoutingStore documents,
            HttpRequest http, TimeProvider time, ClaimsPrincipal user, Infrastructure.Teams.TeamDirectory teams, IDbContextFactory<CrmDbContext> contexts,
            CancellationToken ct) =>
        {
            if (PageParameter(http) is { } refused)
                return refused;
            if (pageSize is < 1 or > MaxPageSize)
                return Problems.Invalid("pageSize", $"pageSize is 1-{MaxPageSize}.");
            // A personal key reaches what its person's console would: a restricted team's list is refused as /FollowUps does (FX2).
            if (FollowUpReach.IsHiddenTeam(team, await HiddenTeamsAsync(user, teams, contexts, ct)))
                return Problems.Of(ProblemKind.Forbidden, $"The team '{team}' is restricted to its members.", "team");
            var by = until ?? time.GetUtcNow();
            // The filters are part of the list a cursor belongs to, so a cursor is not reused for another list. Without
            // "until" a walk's later pages use their own "now": what fell due meanwhile comes at the end (earliest first).
            var list = $"d:{owner?.ToLowerInvariant()}|{team?.ToLowerInvariant()}|{until?.UtcTicks}";
            (string Key, string Id)? after = null;
            if (cursor is not null && (after = FollowUpCursor.Decode(cursor, list)) is null)
                return Problems.Invalid("cursor", "The cursor is malformed or belongs to another list.");
            var size = pageSize ?? DefaultPageSize;
            var rows = (await documents.DueFollowUpsAsync(by, owner, team, after?.Key, after?.Id, size + 1, ct)).Select(RoutingJson.Read<CustomerFollowUp>).ToList();
            return Results.Ok(await VisibleAsync(PageOf(rows, size, list, f => f.NextDueAt!.Value), user, teams, contexts, ct));
        });
    }

    private static async Task<IReadOnlyList<string>> HiddenTeamsAsync(ClaimsPrincipal user, Infrastructure.Teams.TeamDirectory teams,
        IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken) =>
        await RepliesApi.HiddenTeamsAsync(await RepliesApi.OwnerAsync(user, contexts, cancellationToken), teams, contexts, cancellationToken);

    /// <summary>The page without entries of restricted teams the caller is not in; the cursor still follows the whole list,
    /// so a page may hold fewer items than asked (FX2).</summary>
    private static async Task<Page<CustomerFollowUp>> VisibleAsync(Page<CustomerFollowUp> page, ClaimsPrincipal user, Infrastructure.Teams.TeamDirectory teams,
        IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        var hidden = await HiddenTeamsAsync(user, teams, contexts, cancellationToken);
        return hidden.Count == 0 ? page : page with { Items = [.. await FollowUpReach.VisibleAsync(page.Items, hidden, contexts, cancellationToken)] };
    }

    private static Page<CustomerFollowUp> PageOf(List<CustomerFollowUp> rows, int size, string list, Func<CustomerFollowUp, DateTimeOffset> key)
    {
        if (rows.Count <= size)
            return new Page<CustomerFollowUp>(rows, null);
        var last = rows[size - 1];
        return new Page<CustomerFollowUp>(rows.GetRange(0, size), FollowUpCursor.Encode(list, key(last), last.Id));
    }

    /// <summary>Marks an entry done: its author or owner, a member of its team or of the owner's team, or an admin may;
    /// anyone else gets 403. The close is kept on the entry (<see cref="CustomerFollowUp.DoneBy"/>) and in the audit.</summary>
    internal static async Task<IResult> CompleteAsync(Guid id, ClaimsPrincipal user, IGrainFactory grains, IDbContextFactory<CrmDbContext> contexts,
        Infrastructure.Teams.TeamDirectory teams, TimeProvider time, CancellationToken cancellationToken)
    {
        var grain = grains.GetGrain<ICustomerFollowUpGrain>(id);
        // An entry of a restricted team the caller is not in does not exist for them (FX2), as on the customer page.
        if (await grain.GetAsync() is not { } entry || !await FollowUpReach.IsVisibleAsync(entry, await HiddenTeamsAsync(user, teams, contexts, cancellationToken), contexts, cancellationToken))
            return Problems.Of(ProblemKind.NotFound, $"No follow-up {id}.", "id");
        var closer = Closer.Of(user);
        if (!await MayCloseAsync(entry, closer, contexts, cancellationToken))
            return Problems.Of(ProblemKind.Forbidden, "Only the follow-up's author or owner, a member of its team or the owner's team, or an admin, may mark it done.", "id");
        return Results.Ok(await CloseAsync(grains, contexts, time, entry, closer.Actor, cancellationToken));
    }

    /// <summary>Closes the entry by hand and writes the audit row (entity "customer", action "follow-up-done"). The row's
    /// id is derived from the entry, and it is written whenever the entry ends up closed by this actor (now or by an
    /// earlier attempt that died before its audit), so a retry repeats a missing row and two concurrent closes write one (RT6).</summary>
    internal static async Task<CustomerFollowUp?> CloseAsync(IGrainFactory grains, IDbContextFactory<CrmDbContext> contexts, TimeProvider time,
        CustomerFollowUp entry, string actor, CancellationToken cancellationToken)
    {
        var done = await grains.GetGrain<ICustomerFollowUpGrain>(entry.Id).CompleteAsync(actor, cancellationToken);
        if (done is not { DoneAt: { } at } || !string.Equals(done.DoneBy, actor, StringComparison.Ordinal))
            return done;
        var auditId = FollowUpCursor.IdFor($"audit:follow-up-done:{entry.Id:N}");
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        if (await db.Audit.AsNoTracking().AnyAsync(a => a.Id == auditId, cancellationToken))
            return done;
        db.Audit.Add(new Grains.Records.AuditRecord
        {
            Id = auditId, EntityType = "customer", EntityId = entry.CustomerId.ToString(), Action = "follow-up-done", Actor = actor,
            At = at, Field = "follow-up", NewValue = entry.Id.ToString(),
        });
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // A concurrent close of the same entry wrote it first; anything else is a real failure.
            if (!await AuditExistsAsync(contexts, auditId, cancellationToken))
                throw;
        }
        return done;
    }

    private static async Task<bool> AuditExistsAsync(IDbContextFactory<CrmDbContext> contexts, Guid id, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.Audit.AsNoTracking().AnyAsync(a => a.Id == id, cancellationToken);
    }

    /// <summary>Who closes: the actor's name, the console person behind it (a signed-in person, or a personal key's
    /// owner; null for a system key) and whether they are an admin.</summary>
    internal sealed record Closer(string Actor, string? Person, bool Admin)
    {
        public static Closer Of(ClaimsPrincipal user) => user.Identity?.AuthenticationType == ApiKeyAuthenticationHandler.SchemeName
            ? new(user.Actor(), user.KeyOwnerId(), user.IsInRole(Roles.Admin))
            : new(user.ConsoleActor(), user.FindFirstValue(ClaimTypes.NameIdentifier), user.IsInRole(ConsoleRoles.Admin));
    }

    /// <summary>An admin closes any entry; anyone else the entries they recorded or own, and those of their teams: the
    /// entry's team or a team of its owner. A personal key is its owner: it closes what that person owns (by account id,
    /// email or user name) or recorded with any of their keys.</summary>
    internal static async Task<bool> MayCloseAsync(CustomerFollowUp entry, Closer closer, IDbContextFactory<CrmDbContext> contexts, CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await (await CloserScope.LoadAsync(closer, db, cancellationToken)).MayCloseAsync(entry, db, cancellationToken);
    }

    /// <summary>The closer resolved once per request (RT8): the names that denote their console person (account id, email,
    /// user name, the actors of their personal keys, as <see cref="NotificationRecipients.PeopleAsync"/> resolves them)
    /// and their teams, so deciding about many entries costs no query per entry.</summary>
    internal sealed class CloserScope
    {
        private CloserScope(Closer closer, string? email, string? userName, HashSet<string> keyActors, List<string> teams) =>
            (Closer, _email, _userName, _keyActors, Teams) = (closer, email, userName, keyActors, teams);

        private readonly string? _email;
        private readonly string? _userName;
        private readonly HashSet<string> _keyActors;

        public Closer Closer { get; }
        public IReadOnlyList<string> Teams { get; }

        public static async Task<CloserScope> LoadAsync(Closer closer, CrmDbContext db, CancellationToken cancellationToken)
        {
            if (closer.Person is not { } person)
                return new(closer, null, null, [], []);
            var user = await db.Users.AsNoTracking().Where(u => u.Id == person).Select(u => new { u.Email, u.UserName }).FirstOrDefaultAsync(cancellationToken);
            var keys = await db.ApiKeys.AsNoTracking().Where(k => k.OwnerId == person).Select(k => k.Name).Distinct().ToListAsync(cancellationToken);
            // A key name that another person owns too resolves to nobody (as in PeopleAsync).
            var shared = await db.ApiKeys.AsNoTracking().Where(k => keys.Contains(k.Name) && k.OwnerId != null && k.OwnerId != person)
                .Select(k => k.Name).Distinct().ToListAsync(cancellationToken);
            var teams = await db.TeamMembers.AsNoTracking().Where(m => m.UserId == person).Select(m => m.TeamId).ToListAsync(cancellationToken);
            return new(closer, user?.Email, user?.UserName, [.. keys.Except(shared).Select(k => "apikey:" + k)], teams);
        }

        /// <summary>Every name that denotes the closer's console person (account id, email, user name, the actors of their
        /// personal keys); none without a person. "Mine" on /FollowUps matches an entry's owner against these (FX7).</summary>
        public IReadOnlyList<string> Names => Closer.Person is { } person
            ? [person, .. new[] { _email, _userName }.OfType<string>(), .. _keyActors]
            : [];

        /// <summary>True when the name (an owner or author) denotes the closer's console person.</summary>
        private bool IsMe(string? name) => Closer.Person is { } person && name is not null && (name.StartsWith("apikey:", StringComparison.Ordinal)
            ? _keyActors.Contains(name)
            : name == person || string.Equals(name, _email, StringComparison.OrdinalIgnoreCase) || string.Equals(name, _userName, StringComparison.OrdinalIgnoreCase));

        /// <summary>The entry is the closer's own: an admin's, or recorded or owned by the closer (the same actor or the same
        /// person). Recording a contact closes only these (RT4): a team-mate's follow-up stays theirs to close.</summary>
        public bool Owns(CustomerFollowUp entry) =>
            Closer.Admin || string.Equals(entry.By, Closer.Actor, StringComparison.OrdinalIgnoreCase) || string.Equals(entry.Owner, Closer.Actor, StringComparison.OrdinalIgnoreCase)
            || (Closer.Person is { } person && entry.OwnerId == person) || IsMe(entry.Owner ?? entry.By) || IsMe(entry.By);

        /// <summary>Closing by hand: the closer's own entries, and a colleague's: the closer shares the entry's team or a team of its owner.</summary>
        public async Task<bool> MayCloseAsync(CustomerFollowUp entry, CrmDbContext db, CancellationToken cancellationToken)
        {
            if (Owns(entry))
                return true;
            if (Teams.Count == 0)
                return false;
            if (entry.Team is { } team && Teams.Contains(team, StringComparer.OrdinalIgnoreCase))
                return true;
            var owners = entry.OwnerId is { } ownerId ? [ownerId] : (await NotificationRecipients.PeopleAsync(db, [entry.Owner ?? entry.By], cancellationToken)).ToList();
            var mine = Teams.ToList();
            return await db.TeamMembers.AsNoTracking().AnyAsync(m => owners.Contains(m.UserId) && mine.Contains(m.TeamId), cancellationToken);
        }
    }

    internal static Task<IResult> RecordAsync(Guid id, CustomerFollowUpRequest request, HttpContext http, ClaimsPrincipal user, IGrainFactory grains,
        IRoutingStore documents, IDbContextFactory<CrmDbContext> contexts, TimeProvider time, CancellationToken cancellationToken) =>
        RecordEntryAsync(id, request, () => AgentApi.TryReadIdempotencyKey(http, user, out var key) ? (true, key) : (false, null), user, grains, documents, contexts, time, cancellationToken);

    /// <summary>Records a contact: the REST POST and the console's "Record follow-up" form (customer and ticket pages) both
    /// come here, so they refuse the same things with the same messages and fields. <paramref name="requestId"/> gives the
    /// retry key (the Idempotency-Key header, or the form's one-time id); it is read where the API always read it.</summary>
    internal static async Task<IResult> RecordEntryAsync(Guid id, CustomerFollowUpRequest request, Func<(bool Valid, string? Key)> requestId, ClaimsPrincipal user,
        IGrainFactory grains, IRoutingStore documents, IDbContextFactory<CrmDbContext> contexts, TimeProvider time, CancellationToken cancellationToken)
    {
        if (request.How is not { } how)
            return Problems.Invalid("how", "how is required: phone, email, visit, chat or other.");
        if (request.Outcome is { Length: > MaxOutcomeLength })
            return Problems.Invalid("outcome", $"The outcome is at most {MaxOutcomeLength} characters.");
        var now = time.GetUtcNow();
        if (request.NextDueAt is { } next && next > now + TicketFollowUpGrain.MaxAhead)
            return Problems.Invalid("nextDueAt", $"The next follow-up is at most {TicketFollowUpGrain.MaxAhead.Days} days ahead.");
        if (request.At is { } at && at > now + TimeSpan.FromMinutes(5))
            return Problems.Invalid("at", "at is when the contact happened; it cannot be in the future.");
        foreach (var (field, value) in new[] { ("owner", request.Owner), ("team", request.Team) })
            if (value is { Length: > 200 })
                return Problems.Invalid(field, $"{field} is at most 200 characters.");
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // The team is stored as the id of an existing team (its id or name, any case), so the due lists and the
        // notices' team fallback find it; a misspelt team is refused rather than its notices going to the admins.
        string? team = null;
        if (!string.IsNullOrWhiteSpace(request.Team))
        {
            var wanted = request.Team.Trim();
            var teams = await db.Teams.AsNoTracking().Select(t => new { t.Id, t.Name }).ToListAsync(cancellationToken);
            team = teams.FirstOrDefault(t => string.Equals(t.Id, wanted, StringComparison.OrdinalIgnoreCase))?.Id
                ?? teams.FirstOrDefault(t => string.Equals(t.Name, wanted, StringComparison.OrdinalIgnoreCase))?.Id;
            if (team is null)
                return Problems.Invalid("team", $"There is no team '{wanted}'; use a team id from /api/v1/admin/teams.");
        }
        if (await grains.GetGrain<ICustomerGrain>(id).GetAsync() is null)
            return Problems.Of(ProblemKind.NotFound, $"No customer {id}.", "id");
        if (request.Ticket is { } number && await grains.GetGrain<ITicketGrain>(number).GetAsync() is not { } ticket)
            return Problems.Of(ProblemKind.NotFound, $"No ticket #{number}.", "ticket");
        else if (request.Ticket is not null && (await grains.GetGrain<ITicketGrain>(request.Ticket.Value).GetAsync())!.CustomerId != id)
            return Problems.Invalid("ticket", $"Ticket #{request.Ticket} belongs to another customer.");
        if (requestId() is not (true, var retryKey))
            return Problems.Invalid("Idempotency-Key", $"Idempotency-Key must be one value of 1-{AgentApi.MaxIdempotencyKeyLength} visible ASCII characters.");
        var closer = Closer.Of(user);
        var actor = closer.Actor;
        var owner = string.IsNullOrWhiteSpace(request.Owner) ? actor : request.Owner.Trim();
        // With an Idempotency-Key the entry's id comes from it (scoped to the key and customer): a retry finds the entry,
        // and the grain closes only what the first request chose (stored with the entry), never one recorded since.
        var entryId = retryKey is null ? Guid.NewGuid() : FollowUpCursor.IdFor($"{retryKey}:{id:N}");
        var grain = grains.GetGrain<ICustomerFollowUpGrain>(entryId);
        // This contact is the follow-up the earlier entries asked for: their reminders stop. Only the caller's own
        // (recorded or owned by them, or any for an admin): a team-mate's stays open, theirs to close (RT4). The caller is
        // resolved once (RT8); the open entries are read a page at a time, and more than MaxCloses is refused, not cut.
        var scope = await CloserScope.LoadAsync(closer, db, cancellationToken);
        var closes = new List<Guid>();
        for (string? afterAt = null, afterId = null; ;)
        {
            var page = (await documents.CustomerFollowUpsAsync(id, true, afterAt, afterId, MaxPageSize, cancellationToken)).Select(RoutingJson.Read<CustomerFollowUp>).ToList();
            closes.AddRange(page.Where(f => f.Id != entryId && scope.Owns(f)).Select(f => f.Id));
            if (closes.Count > CustomerFollowUpGrain.MaxCloses)
                return Problems.Invalid("customer", $"This contact would close more than {CustomerFollowUpGrain.MaxCloses} open follow-ups of the customer; " +
                    "mark some done first (POST /api/v1/follow-ups/{id}/done).");
            if (page.Count < MaxPageSize)
                break;
            (afterAt, afterId) = (RoutingJson.Write(page[^1].At).Trim('"'), page[^1].Id.ToString("N"));
        }
        var ownerIds = await NotificationRecipients.PeopleAsync(db, [owner], cancellationToken);
        var entry = await grain.RecordAsync(new CustomerFollowUp
        {
            Id = Guid.Empty,
            CustomerId = id,
            Ticket = request.Ticket,
            By = actor,
            // UTC, so the stored times sort as text (the log is paged on them).
            At = (request.At ?? now).ToUniversalTime(),
            How = how,
            Outcome = string.IsNullOrWhiteSpace(request.Outcome) ? null : request.Outcome.Trim(),
            NextDueAt = request.NextDueAt?.ToUniversalTime(),
            Owner = owner,
            OwnerId = ownerIds.Count == 1 ? ownerIds.First() : null,
            Team = team,
            // Closed by the grain after it stores the entry, in the same call (RR5: a crash in between is finished by
            // a replay or by the earlier entry's own tick, which finds itself named here).
            Closes = closes,
        }, cancellationToken);
        return TypedResults.Created($"/api/v1/customers/{id}/follow-ups", entry);
    }
}

/// <summary>Opaque cursor of a follow-up list: base64url of the list it belongs to, the position's time (as stored) and
/// the entry's id.</summary>
internal static class FollowUpCursor
{
    public static string Encode(string list, DateTimeOffset key, Guid id) =>
        System.Buffers.Text.Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes($"{list}\n{RoutingJson.Write(key.ToUniversalTime()).Trim('"')}\n{id:N}"));

    public static (string Key, string Id)? Decode(string cursor, string list)
    {
        if (cursor.Length > 1000)
            return null;
        string text;
        try
        {
            text = System.Text.Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(cursor));
        }
        catch (FormatException)
        {
            return null;
        }
        var parts = text.Split('\n');
        if (parts.Length != 3 || parts[0] != list || !DateTimeOffset.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out _)
            || !Guid.TryParseExact(parts[2], "N", out _))
            return null;
        return (parts[1], parts[2]);
    }

    /// <summary>A stable entry id for an idempotency key.</summary>
    public static Guid IdFor(string requestId) =>
        new(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("customer-follow-up:" + requestId)).AsSpan(0, 16));
}
