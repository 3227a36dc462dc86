using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Infrastructure.WebChat;

/// <summary>A web chat visitor's standing (see <see cref="WebChatVisitorState"/>): one row per visitor that was renewed,
/// revoked, blocked or verified.</summary>
public sealed class WebChatVisitorRecord
{
    public required string WidgetId { get; set; }
    public required string VisitorId { get; set; }
    public int Generation { get; set; }
    public int? GraceGeneration { get; set; }
    public DateTimeOffset? GraceUntil { get; set; }
    /// <summary>The session a recoverable new-conversation rotation moved to (review WV6).</summary>
    public string? GraceSession { get; set; }
    public bool Blocked { get; set; }
    public string? BlockReason { get; set; }
    public string? VerifiedEmail { get; set; }
    public DateTimeOffset? VerifiedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>A visitor's pending email code (one per visitor; a new code replaces it): only its hash is kept.</summary>
public sealed class WebChatPendingCodeRecord
{
    public required string WidgetId { get; set; }
    public required string VisitorId { get; set; }
    public required string Email { get; set; }
    public string? Name { get; set; }
    public required byte[] Hash { get; set; }
    public DateTimeOffset Expires { get; set; }
    public int TriesLeft { get; set; }
}

/// <summary>One event counted in a stored budget (a code mailed, a wrong code): rows of a key within its window are
/// what the budget counts; older ones are pruned.</summary>
public sealed class WebChatBudgetEventRecord
{
    public long Id { get; set; }
    public required string Key { get; set; }
    public DateTimeOffset At { get; set; }
}

/// <summary>Written in its own small transactions (like mailbox cursors: connector state, not grain state of the core);
/// only the visitor's grain writes a row, so there is one writer per row.</summary>
internal sealed class SqliteWebChatVisitorStore(IDbContextFactory<CrmDbContext> contexts) : IWebChatVisitorStore
{
    public async Task<WebChatVisitorState?> FindAsync(string widgetId, string visitorId, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var row = await db.WebChatVisitors.AsNoTracking().SingleOrDefaultAsync(v => v.WidgetId == widgetId && v.VisitorId == visitorId, cancellationToken);
        return row is null ? null : new WebChatVisitorState
        {
            WidgetId = row.WidgetId,
            VisitorId = row.VisitorId,
            Generation = row.Generation,
            GraceGeneration = row.GraceGeneration,
            GraceUntil = row.GraceUntil,
            GraceSession = row.GraceSession,
            Blocked = row.Blocked,
            BlockReason = row.BlockReason,
            VerifiedEmail = row.VerifiedEmail,
            VerifiedAt = row.VerifiedAt,
            UpdatedAt = row.UpdatedAt,
        };
    }

    public async Task SaveAsync(WebChatVisitorState state, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var row = await db.WebChatVisitors.SingleOrDefaultAsync(v => v.WidgetId == state.WidgetId && v.VisitorId == state.VisitorId, cancellationToken);
        if (row is null)
        {
            row = new WebChatVisitorRecord { WidgetId = state.WidgetId, VisitorId = state.VisitorId };
            db.WebChatVisitors.Add(row);
        }
        row.Generation = state.Generation;
        row.GraceGeneration = state.GraceGeneration;
        row.GraceUntil = state.GraceUntil;
        row.GraceSession = state.GraceSession;
        row.Blocked = state.Blocked;
        row.BlockReason = state.BlockReason;
        row.VerifiedEmail = state.VerifiedEmail;
        row.VerifiedAt = state.VerifiedAt;
        row.UpdatedAt = state.UpdatedAt;
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>Budgets are kept this long at most (the longest window is a day).</summary>
    private static readonly TimeSpan KeepEvents = TimeSpan.FromDays(2);

    public async Task<BudgetRefusal?> IssueCodeAsync(PendingCodeRequest request, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // BEGIN IMMEDIATE (Microsoft.Data.Sqlite's default): the counts and the inserts are one write transaction, so
        // two nodes asking at once cannot both take the last place of a budget.
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var spares = new List<string>();
        foreach (var budget in request.Budgets)
        {
            var since = request.Now - budget.Window;
            var times = await db.WebChatBudgetEvents.Where(e => e.Key == budget.Key && e.At > since).OrderBy(e => e.At)
                .Select(e => e.At).Take(budget.Limit).ToListAsync(cancellationToken);
            if (times.Count < budget.Limit)
                continue;
            // A shared budget someone else used up: this address's own spare lets it through (review W2), while the
            // spares of all addresses together stay under their total (review KW4).
            if (budget.SpareKey is { } spare
                && await db.WebChatBudgetEvents.CountAsync(e => e.Key == spare && e.At > since, cancellationToken) < budget.SpareAllowance
                && (budget.SpareTotalKey is not { } total || await SpareTotalLeftAsync(db, total, request.Now - budget.SpareTotalWindow, budget.SpareTotalLimit, spares, cancellationToken)))
            {
                spares.Add(spare);
                if (budget.SpareTotalKey is { } totalKey)
                    spares.Add(totalKey);
                continue;
            }
            return new BudgetRefusal(budget.Key, times[0] + budget.Window - request.Now);
        }
        foreach (var key in request.Budgets.Where(b => !b.Key.StartsWith("code-wrong:", StringComparison.Ordinal)).Select(b => b.Key).Concat(spares))
            db.WebChatBudgetEvents.Add(new WebChatBudgetEventRecord { Key = key, At = request.Now });
        var row = await db.WebChatPendingCodes.SingleOrDefaultAsync(c => c.WidgetId == request.WidgetId && c.VisitorId == request.VisitorId, cancellationToken);
        if (row is null)
        {
            row = new WebChatPendingCodeRecord { WidgetId = request.WidgetId, VisitorId = request.VisitorId, Email = request.Email, Hash = request.Hash };
            db.WebChatPendingCodes.Add(row);
        }
        row.Email = request.Email;
        row.Name = request.Name;
        row.Hash = request.Hash;
        row.Expires = request.Expires;
        row.TriesLeft = request.Tries;
        await db.SaveChangesAsync(cancellationToken);
        var old = request.Now - KeepEvents;
        await db.WebChatBudgetEvents.Where(e => e.At < old).ExecuteDeleteAsync(cancellationToken);
        await db.WebChatPendingCodes.Where(c => c.Expires < old).ExecuteDeleteAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return null;
    }

    /// <summary>Whether the spare total has room, counting the spares this request already took (one request may pass two
    /// spare budgets of one recipient; it takes one place of the total for each).</summary>
    private static async Task<bool> SpareTotalLeftAsync(CrmDbContext db, string key, DateTimeOffset since, int limit, List<string> taken, CancellationToken cancellationToken) =>
        await db.WebChatBudgetEvents.CountAsync(e => e.Key == key && e.At > since, cancellationToken) + taken.Count(k => k == key) < limit;

    public async Task<StoredCodeCheck> CheckCodeAsync(string widgetId, string visitorId, byte[] hash, DateTimeOffset now, string group, int wrongCodesPerDayPerGroup, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var row = await db.WebChatPendingCodes.SingleOrDefaultAsync(c => c.WidgetId == widgetId && c.VisitorId == visitorId, cancellationToken);
        StoredCodeCheck result;
        if (row is null)
            return new StoredCodeCheck(StoredCodeOutcome.NoCode);
        var groupKey = WebChatBudgetKeys.WrongCodesFromGroup(row.Email, group);
        var dayAgo = now - TimeSpan.FromDays(1);
        if (row.Expires <= now || row.TriesLeft <= 0
            // The hard bound on guessing at one address from one network (review KW4, WV2): past it, no code to the
            // address checked from this group is even compared; other groups (the owner's) are not affected.
            || await db.WebChatBudgetEvents.CountAsync(e => e.Key == groupKey && e.At > dayAgo, cancellationToken) >= wrongCodesPerDayPerGroup)
        {
            db.WebChatPendingCodes.Remove(row);
            result = new StoredCodeCheck(StoredCodeOutcome.NoCode);
        }
        else if (!System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(hash, row.Hash))
        {
            row.TriesLeft--;
            db.WebChatBudgetEvents.Add(new WebChatBudgetEventRecord { Key = WebChatBudgetKeys.WrongCodes(row.Email), At = now });
            db.WebChatBudgetEvents.Add(new WebChatBudgetEventRecord { Key = groupKey, At = now });
            if (row.TriesLeft <= 0)
                db.WebChatPendingCodes.Remove(row);
            result = row.TriesLeft > 0 ? new StoredCodeCheck(StoredCodeOutcome.Wrong, TriesLeft: row.TriesLeft) : new StoredCodeCheck(StoredCodeOutcome.NoCode);
        }
        else
        {
            db.WebChatPendingCodes.Remove(row);
            result = new StoredCodeCheck(StoredCodeOutcome.Verified, row.Email, row.Name);
        }
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return result;
    }

    public async Task<string?> FindConversationIdentityAsync(string widgetId, string threadKey, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var key = GrainKeys.Conversation(widgetId, threadKey);
        var identity = await db.Conversations.AsNoTracking().Where(c => c.Key == key).Select(c => c.CustomerIdentity).SingleOrDefaultAsync(cancellationToken);
        const string prefix = "webchat:";
        return identity is not null && identity.StartsWith(prefix, StringComparison.Ordinal) ? identity[prefix.Length..] : null;
    }

    public async Task<bool> IsVisitorAnsweredAsync(string visitorKey, CancellationToken cancellationToken = default)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var identity = "webchat:" + visitorKey;
        // Through the identity's customer (indexed), then that customer's conversations of this identity: a merge moves
        // the conversations with the identity, so none is missed.
        return await db.Identities.AsNoTracking().Where(i => i.Key == identity)
            .Join(db.Conversations, i => i.CustomerId, c => c.CustomerId, (_, c) => c)
            .Where(c => c.CustomerIdentity == identity)
            .Join(db.Messages, c => c.Id, m => m.ConversationId, (_, m) => m)
            .AnyAsync(m => m.Direction == MessageDirection.Outbound, cancellationToken);
    }
}
