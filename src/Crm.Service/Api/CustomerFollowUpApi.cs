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
/// by recording a newer entry, is for its author or owner, or an admin key; a POST with an Idempotency-Key records one
/// entry however often it is sent, and a replay closes nothing recorded after the entry.</summary>
internal static class CustomerFollowUpApi
{
    public const int MaxOutcomeLength = 4000;
    public const int MaxPageSize = 200;
    public const int DefaultPageSize = 50;

    public static void Map(RouteGroupBuilder api)
    {
        api.MapGet("/customers/{id:guid}/follow-ups", async (Guid id, string? cursor, int? pageSize, IRoutingStore documents, CancellationToken ct) =>
        {
            if (pageSize is < 1 or > MaxPageSize)
                return Problems.Invalid("pageSize", $"pageSize is 1-{MaxPageSize}.");
            var list = "c:" + id.ToString("N");
            (string Key, string Id)? after = null;
            if (cursor is not null && (after = FollowUpCursor.Decode(cursor, list)) is null)
                return Problems.Invalid("cursor", "The cursor is malformed or belongs to another list.");
            var size = pageSize ?? DefaultPageSize;
            var rows = (await documents.CustomerFollowUpsAsync(id, false, after?.Key, after?.Id, size + 1, ct)).Select(RoutingJson.Read<CustomerFollowUp>).ToList();
            return Results.Ok(PageOf(rows, size, list, f => f.At));
        });
        api.MapPost("/customers/{id:guid}/follow-ups", RecordAsync);
        api.MapPost("/follow-ups/{id:guid}/done", CompleteAsync);
        api.MapGet("/follow-ups/due", async (string? owner, string? team, DateTimeOffset? until, string? cursor, int? pageSize, IRoutingStore documents,
            TimeProvider time, CancellationToken ct) =>
        {
            if (pageSize is < 1 or > MaxPageSize)
                return Problems.Invalid("pageSize", $"pageSize is 1-{MaxPageSize}.");
            var by = until ?? time.GetUtcNow();
            // The filters are part of the list a cursor belongs to, so a cursor is not reused for another list. Without
            // "until" a walk's later pages use their own "now": what fell due meanwhile comes at the end (earliest first).
            var list = $"d:{owner?.ToLowerInvariant()}|{team?.ToLowerInvariant()}|{until?.UtcTicks}";
            (string Key, string Id)? after = null;
            if (cursor is not null && (after = FollowUpCursor.Decode(cursor, list)) is null)
                return Problems.Invalid("cursor", "The cursor is malformed or belongs to another list.");
            var size = pageSize ?? DefaultPageSize;
            var rows = (await documents.DueFollowUpsAsync(by, owner, team, after?.Key, after?.Id, size + 1, ct)).Select(RoutingJson.Read<CustomerFollowUp>).ToList();
            return Results.Ok(PageOf(rows, size, list, f => f.NextDueAt!.Value));
        });
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
        TimeProvider time, CancellationToken cancellationToken)
    {
        var grain = grains.GetGrain<ICustomerFollowUpGrain>(id);
        if (await grain.GetAsync() is not { } entry)
            return Problems.Of(ProblemKind.NotFound, $"No follow-up {id}.", "id");
        var closer = Closer.Of(user);
        if (!await MayCloseAsync(entry, closer, contexts, cancellationToken))
            return Problems.Of(ProblemKind.Forbidden, "Only the follow-up's author or owner, a member of its team or the owner's team, or an admin, may mark it done.", "id");
        return Results.Ok(await CloseAsync(grains, contexts, time, entry, closer.Actor, cancellationToken));
    }

    /// <summary>Closes the entry by hand and writes the audit row (entity "customer", action "follow-up-done").</summary>
    internal static async Task<CustomerFollowUp?> CloseAsync(IGrainFactory grains, IDbContextFactory<CrmDbContext> contexts, TimeProvider time,
        CustomerFollowUp entry, string actor, CancellationToken cancellationToken)
    {
        var done = await grains.GetGrain<ICustomerFollowUpGrain>(entry.Id).CompleteAsync(actor, cancellationToken);
        if (entry.DoneAt is null)
        {
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            db.Audit.Add(new Grains.Records.AuditRecord
            {
                Id = Guid.NewGuid(), EntityType = "customer", EntityId = entry.CustomerId.ToString(), Action = "follow-up-done", Actor = actor,
                At = time.GetUtcNow(), Field = "follow-up", NewValue = entry.Id.ToString(),
            });
            await db.SaveChangesAsync(cancellationToken);
        }
        return done;
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
        if (closer.Admin || string.Equals(entry.By, closer.Actor, StringComparison.OrdinalIgnoreCase) || string.Equals(entry.Owner, closer.Actor, StringComparison.OrdinalIgnoreCase))
            return true;
        if (closer.Person is not { } person)
            return false;
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var owners = await NotificationRecipients.PeopleAsync(db, [entry.Owner ?? entry.By], cancellationToken);
        if (owners.Contains(person) || (await NotificationRecipients.PeopleAsync(db, [entry.By], cancellationToken)).Contains(person))
            return true;
        // A colleague: the closer shares the entry's team or a team of the owner.
        var mine = await db.TeamMembers.AsNoTracking().Where(m => m.UserId == person).Select(m => m.TeamId).ToListAsync(cancellationToken);
        if (mine.Count == 0)
            return false;
        if (entry.Team is { } team && mine.Contains(team, StringComparer.OrdinalIgnoreCase))
            return true;
        var ownerIds = owners.ToList();
        return await db.TeamMembers.AsNoTracking().AnyAsync(m => ownerIds.Contains(m.UserId) && mine.Contains(m.TeamId), cancellationToken);
    }

    internal static async Task<IResult> RecordAsync(Guid id, CustomerFollowUpRequest request, HttpContext http, ClaimsPrincipal user, IGrainFactory grains,
        IRoutingStore documents, IDbContextFactory<CrmDbContext> contexts, TimeProvider time, CancellationToken cancellationToken)
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
        // The team is stored as the id of an existing team (its id or name, any case), so the due lists and the
        // notices' team fallback find it; a misspelt team is refused rather than its notices going to the admins.
        string? team = null;
        if (!string.IsNullOrWhiteSpace(request.Team))
        {
            var wanted = request.Team.Trim();
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
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
        if (!AgentApi.TryReadIdempotencyKey(http, user, out var requestId))
            return Problems.Invalid("Idempotency-Key", $"Idempotency-Key must be one value of 1-{AgentApi.MaxIdempotencyKeyLength} visible ASCII characters.");
        // This contact is the follow-up the earlier entries asked for: their reminders stop (read a page at a time).
        var open = new List<CustomerFollowUp>();
        for (string? afterAt = null, afterId = null; ;)
        {
            var page = (await documents.CustomerFollowUpsAsync(id, true, afterAt, afterId, DefaultPageSize, cancellationToken)).Select(RoutingJson.Read<CustomerFollowUp>).ToList();
            open.AddRange(page);
            if (page.Count < DefaultPageSize)
                break;
            (afterAt, afterId) = (RoutingJson.Write(page[^1].At).Trim('"'), page[^1].Id.ToString("N"));
        }
        var closer = Closer.Of(user);
        var actor = closer.Actor;
        // With an Idempotency-Key the entry's id comes from it (scoped to the key and customer): a retry finds the entry,
        // and the grain closes only what the first request chose (stored with the entry), never one recorded since.
        var entryId = requestId is null ? Guid.NewGuid() : FollowUpCursor.IdFor($"{requestId}:{id:N}");
        var grain = grains.GetGrain<ICustomerFollowUpGrain>(entryId);
        // Only what the caller may close by hand: another person's follow-up stays open (theirs to close).
        var closes = new List<Guid>();
        foreach (var earlier in open.Where(f => f.Id != entryId))
            if (await MayCloseAsync(earlier, closer, contexts, cancellationToken))
                closes.Add(earlier.Id);
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
            Owner = string.IsNullOrWhiteSpace(request.Owner) ? actor : request.Owner.Trim(),
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
