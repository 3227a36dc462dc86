using Crm.Service.Contracts;
using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.Routing;

/// <summary>A routing/SLA document (see <see cref="IRoutingStore"/>).</summary>
public sealed class RoutingDocumentRecord
{
    public required string Kind { get; set; }
    public required string Id { get; set; }
    public required string Json { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary><see cref="IRoutingStore"/> on the embedded SQLite file (an upsert per put; SQLite's commit is durable).</summary>
internal sealed class SqliteRoutingStore(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer, TimeProvider time) : IRoutingStore
{
    public async Task<string?> GetAsync(string kind, string id, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.RoutingDocuments.AsNoTracking().Where(d => d.Kind == kind && d.Id == id).Select(d => d.Json).FirstOrDefaultAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<string>> ListAsync(string kind, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.RoutingDocuments.AsNoTracking().Where(d => d.Kind == kind).OrderBy(d => d.Id).Select(d => d.Json).ToListAsync(cancellationToken);
    }

    public async Task PutAsync(string kind, string id, string json, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var now = time.GetUtcNow().UtcTicks;
        await db.Database.ExecuteSqlInterpolatedAsync(
            $"INSERT INTO RoutingDocuments (Kind, Id, Json, UpdatedAt) VALUES ({kind}, {id}, {json}, {now}) ON CONFLICT (Kind, Id) DO UPDATE SET Json = excluded.Json, UpdatedAt = excluded.UpdatedAt",
            cancellationToken);
    }

    public async Task<string?> FirstCustomerTextAsync(long ticketNumber, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var text = await db.Messages.AsNoTracking()
            .Where(m => m.TicketNumber == ticketNumber && m.Direction == MessageDirection.Inbound)
            .OrderBy(m => m.CreatedAt).ThenBy(m => m.Id)
            .Select(m => m.Text ?? "").FirstOrDefaultAsync(cancellationToken);
        return text is { Length: > IRoutingStore.MaxConditionText } ? text[..IRoutingStore.MaxConditionText] : text;
    }

    // Follow-up pages filter and order on the stored JSON (json_extract; times are stored as UTC ISO 8601, which
    // sorts as text) and read at most one page: never the whole log. "" stands for "no filter" / "first page".
    public async Task<IReadOnlyList<string>> CustomerFollowUpsAsync(Guid customer, bool openOnly, string? afterAt, string? afterId, int take,
        CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var id = customer.ToString("D");
        var open = openOnly ? 1 : 0;
        var at = afterAt ?? "";
        var after = afterId ?? "";
        // Times are compared as SQLite's UTC text to the millisecond (strftime), not as stored: entries written before
        // times were stored in UTC keep the caller's offset ("+02:00"), and their text would sort out of time order and
        // break the cursor (routing4 review RR11). Entries within one millisecond are ordered by id.
        // An entry named in a later entry's "closes" is done even when a crash cut its own close short (routing5 RT2):
        // it is read as done (doneAt = the closer's recordedAt, doneBy = follow-up:{closer}) and is never "open". Of two
        // closers the earliest recorded (then the smaller id) is the one, both fields from that one row, as
        // FollowUpClosedByAsync picks it for the stored copy (review CX3).
        return await db.Database.SqlQuery<string>($"""
            SELECT CASE WHEN json_extract(d.Json, '$.doneAt') IS NULL AND closed.Entry IS NOT NULL
                        THEN json_set(d.Json, '$.doneAt', closed.At, '$.doneBy', 'follow-up:' || closed.Closer) ELSE d.Json END AS Value
            FROM RoutingDocuments d
            LEFT JOIN (SELECT j.value AS Entry, c.Id AS Closer, json_extract(c.Json, '$.recordedAt') AS At,
                              row_number() OVER (PARTITION BY j.value
                                                 ORDER BY strftime('%Y-%m-%dT%H:%M:%f', json_extract(c.Json, '$.recordedAt')), c.Id) AS Position
                       FROM RoutingDocuments c, json_each(c.Json, '$.closes') j
                       WHERE c.Kind = {FollowUpKind} AND json_extract(c.Json, '$.customerId') = {id}) closed
                ON closed.Entry = json_extract(d.Json, '$.id') AND closed.Position = 1
            WHERE d.Kind = {FollowUpKind} AND json_extract(d.Json, '$.customerId') = {id}
              AND ({open} = 0 OR (json_extract(d.Json, '$.doneAt') IS NULL AND closed.Entry IS NULL AND json_extract(d.Json, '$.nextDueAt') IS NOT NULL))
              AND ({at} = '' OR strftime('%Y-%m-%dT%H:%M:%f', json_extract(d.Json, '$.at')) < strftime('%Y-%m-%dT%H:%M:%f', {at})
                   OR (strftime('%Y-%m-%dT%H:%M:%f', json_extract(d.Json, '$.at')) = strftime('%Y-%m-%dT%H:%M:%f', {at}) AND d.Id < {after}))
            ORDER BY strftime('%Y-%m-%dT%H:%M:%f', json_extract(d.Json, '$.at')) DESC, d.Id DESC LIMIT {take}
            """).ToListAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<string>> DueFollowUpsAsync(DateTimeOffset by, string? owner, string? team, string? afterDue, string? afterId, int take,
        CancellationToken cancellationToken = default, string? ownerId = null, IReadOnlyCollection<string>? ownerNames = null)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var until = RoutingJson.Write(by.ToUniversalTime()).Trim('"');
        // ownerKey/teamKey are lower-cased in .NET (full Unicode); documents from before they existed fall back to lower().
        // Due times are compared as UTC text to the millisecond, as in the log (RR11).
        var who = owner?.ToLowerInvariant() ?? "";
        var person = ownerId ?? "";
        // The names that denote one person (account id, email, user name, personal keys' actors), as a JSON array: an
        // entry recorded before ownerId was stored has only its owner's name (review FX7).
        var names = System.Text.Json.JsonSerializer.Serialize((ownerNames ?? []).Select(n => n.ToLowerInvariant()).Distinct());
        var group = team?.ToLowerInvariant() ?? "";
        var due = afterDue ?? "";
        var after = afterId ?? "";
        return await db.Database.SqlQuery<string>($"""
            SELECT Json AS Value FROM RoutingDocuments
            WHERE Kind = {FollowUpKind} AND json_extract(Json, '$.doneAt') IS NULL
              AND json_extract(Json, '$.nextDueAt') IS NOT NULL AND strftime('%Y-%m-%dT%H:%M:%f', json_extract(Json, '$.nextDueAt')) <= strftime('%Y-%m-%dT%H:%M:%f', {until})
              AND (({who} = '' AND {person} = '' AND {names} = '[]') OR coalesce(json_extract(Json, '$.ownerKey'), lower(coalesce(json_extract(Json, '$.owner'), json_extract(Json, '$.by')))) = {who}
                   OR ({person} <> '' AND json_extract(Json, '$.ownerId') = {person})
                   OR ({names} <> '[]' AND coalesce(json_extract(Json, '$.ownerKey'), lower(coalesce(json_extract(Json, '$.owner'), json_extract(Json, '$.by'))))
                       IN (SELECT value FROM json_each({names}))))
              AND ({group} = '' OR coalesce(json_extract(Json, '$.teamKey'), lower(json_extract(Json, '$.team'))) = {group})
              AND json_extract(Json, '$.id') NOT IN (SELECT j.value FROM RoutingDocuments c, json_each(c.Json, '$.closes') j WHERE c.Kind = {FollowUpKind})
              AND ({due} = '' OR strftime('%Y-%m-%dT%H:%M:%f', json_extract(Json, '$.nextDueAt')) > strftime('%Y-%m-%dT%H:%M:%f', {due})
                   OR (strftime('%Y-%m-%dT%H:%M:%f', json_extract(Json, '$.nextDueAt')) = strftime('%Y-%m-%dT%H:%M:%f', {due}) AND Id > {after}))
            ORDER BY strftime('%Y-%m-%dT%H:%M:%f', json_extract(Json, '$.nextDueAt')), Id LIMIT {take}
            """).ToListAsync(cancellationToken);
    }

    private const string FollowUpKind = "customer-follow-up";

    public async Task<Guid?> FollowUpClosedByAsync(Guid customer, Guid entry, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var id = customer.ToString("D");
        var closed = entry.ToString("D");
        // The column is named with its table: a bare "Json" inside json_each(...) is json_each's own hidden "json"
        // column, so the entry was never found and a close cut short stayed open in its stored copy (found with CX3).
        // Of two closers the earliest recorded, then the smaller id: the one the log shows (review CX3).
        var ids = await db.Database.SqlQuery<string>($"""
            SELECT c.Id AS Value FROM RoutingDocuments c
            WHERE c.Kind = {FollowUpKind} AND json_extract(c.Json, '$.customerId') = {id}
              AND EXISTS (SELECT 1 FROM json_each(c.Json, '$.closes') j WHERE j.value = {closed})
            ORDER BY strftime('%Y-%m-%dT%H:%M:%f', json_extract(c.Json, '$.recordedAt')), c.Id LIMIT 1
            """).ToListAsync(cancellationToken);
        return ids.Count == 0 ? null : Guid.ParseExact(ids[0], "N");
    }

    public async Task<bool> DeleteAsync(string kind, string id, CancellationToken cancellationToken = default)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        return await db.RoutingDocuments.Where(d => d.Kind == kind && d.Id == id).ExecuteDeleteAsync(cancellationToken) > 0;
    }
}
