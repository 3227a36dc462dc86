using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Pages.Admin;

/// <summary>Channel accounts of every kind with their health (last success, last error) as the connectors report it.
/// Never shows a secret or a setting (those may hold credentials); each row links to its edit page (ChannelsEdit).</summary>
public sealed class ChannelsModel(IDbContextFactory<CrmDbContext> contexts, Crm.Connectors.Abstractions.ChannelSettingsCatalog catalog) : PageModel
{
    /// <summary>The kinds this deployment has connectors for (a "new" link each).</summary>
    public IEnumerable<ChannelKind> Kinds => catalog.Kinds.Order();

    public sealed record ChannelRow(string Id, ChannelKind Kind, string Name, bool Enabled, DateTimeOffset? LastSuccessAt, DateTimeOffset? LastErrorAt, string? LastError)
    {
        /// <summary>When the source last delivered something, for connectors that record it (Telegram: the last update).</summary>
        public DateTimeOffset? LastReceivedAt { get; init; }

        /// <summary>"failing" when the last error is newer than the last success, "ok" after a success, "unknown" before either.</summary>
        public string Health => LastErrorAt is { } error && (LastSuccessAt is not { } ok || error > ok) ? "failing"
            : LastSuccessAt is not null ? "ok" : "unknown";
    }

    public IReadOnlyList<ChannelRow> Channels { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        Channels = await db.ChannelAccounts.AsNoTracking().OrderBy(c => c.Id)
            .Select(c => new ChannelRow(c.Id, c.Kind, c.Name, c.Enabled, c.LastSuccessAt, c.LastErrorAt, c.LastError))
            .Take(1000).ToListAsync(cancellationToken);
        var received = await db.MailboxCursors.AsNoTracking().Where(c => c.Folder == Crm.Connectors.Abstractions.ChannelActivity.ReceivedFolder)
            .Select(c => new { c.ChannelAccountId, c.UidValidity }).Take(1000).ToDictionaryAsync(c => c.ChannelAccountId, c => c.UidValidity, cancellationToken);
        Channels = [.. Channels.Select(c => received.TryGetValue(c.Id, out var at) && at > 0 ? c with { LastReceivedAt = DateTimeOffset.FromUnixTimeSeconds(at) } : c)];
    }
}
