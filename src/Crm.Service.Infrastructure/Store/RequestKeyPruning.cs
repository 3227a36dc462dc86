using System.ComponentModel.DataAnnotations;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Store;

/// <summary>How long request keys (table <c>RequestKeys</c>: the ids of macro steps and of ticket changes, and the
/// Idempotency-Keys of calls logged on a customer; a call logged on a ticket is keyed by its message) are kept (section
/// "RequestKeys").</summary>
public sealed class RequestKeyOptions
{
    public const string Section = "RequestKeys";

    /// <summary>A retry with a key older than this is a new request. Must exceed the longest time any client (a bridge's
    /// retry queue, a console page left open over a weekend) may retry a request; hence at least one day.</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often older keys are deleted.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan PruneInterval { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>Deletes request keys older than <see cref="RequestKeyOptions.Retention"/>, a minute after start and then every
/// <see cref="RequestKeyOptions.PruneInterval"/>, so the table holds one retention window of keys, not every key ever used.</summary>
internal sealed class RequestKeyPruning(IDbContextFactory<CrmDbContext> contexts, StoreInitializer initializer,
    IOptions<RequestKeyOptions> options, TimeProvider time, ILogger<RequestKeyPruning> logger) : PeriodicPruning(time, logger)
{
    /// <summary>Rows per delete statement: a long backlog is deleted in short write transactions, not one long one.</summary>
    private const int Chunk = 5_000;

    protected override TimeSpan Interval => options.Value.PruneInterval;

    protected override string What => "request keys";

    /// <summary>Deletes the keys stamped before <paramref name="before"/>; answers how many.</summary>
    public static async Task<int> PruneAsync(CrmDbContext db, DateTimeOffset before, CancellationToken cancellationToken = default)
    {
        var total = 0;
        while (true)
        {
            var keys = await db.RequestKeys.AsNoTracking().Where(k => k.At < before).Select(k => k.Key).Take(Chunk).ToListAsync(cancellationToken);
            if (keys.Count == 0)
                return total;
            total += await db.RequestKeys.Where(k => keys.Contains(k.Key) && k.At < before).ExecuteDeleteAsync(cancellationToken);
            if (keys.Count < Chunk)
                return total;
        }
    }

    protected override async Task<int> PruneOnceAsync(CancellationToken cancellationToken)
    {
        await initializer.EnsureInitializedAsync(cancellationToken);
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        // The keys are stamped with this clock (the ticket grain's and the event store's TimeProvider).
        return await PruneAsync(db, Time.GetUtcNow() - options.Value.Retention, cancellationToken);
    }
}
