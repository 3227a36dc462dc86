using System.ComponentModel.DataAnnotations;

namespace Crm.Service.Infrastructure.Changes;

/// <summary>How the change feed is handed to its consumers and how long it is kept (section "ChangeFeed").</summary>
public sealed class ChangeFeedOptions : IValidatableObject
{
    public const string Section = "ChangeFeed";

    /// <summary>Most changes handed to a consumer in one call.</summary>
    [Range(1, 10_000)]
    public int BatchSize { get; set; } = 500;

    /// <summary>How often an idle consumer looks for changes when no commit wakes it (a safety net: commits wake it at once).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>After a commit wakes a consumer, it waits this long for more commits before it reads: under load one
    /// read and one cursor write then cover many commits instead of one each (the cursor write competes with the
    /// store's writer for the database).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:10")]
    public TimeSpan GatherDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Wait before handing a failed batch to its consumer again; doubles per failure up to <see cref="MaxRetryDelay"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Changes older than this are deleted once every registered consumer's cursor has passed them.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often old changes are pruned.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "1.00:00:00")]
    public TimeSpan PruneInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>A consumer failing for longer than this makes readiness report Degraded (still serving, HTTP 200), naming it.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan DegradedAfter { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>When set, every change is also appended to this file as a line (a diagnostic tap, cursor name "journal").</summary>
    public string? JournalFile { get; set; }

    /// <summary>This node's name in the rebuild holds it writes (<c>{consumer}#rebuilding:{node}:{run}</c>); its start-up
    /// removes the holds a killed run of it left. Must differ per node and stay the same across its restarts. Empty: the
    /// host sets machine name and silo port.</summary>
    [MaxLength(200)]
    public string? NodeId { get; set; }

    /// <summary>How much longer than the slowest routine wait the retention must be.</summary>
    public const int RetentionMargin = 2;

    /// <summary>The longest a healthy consumer can leave a change unread: after each wake it waits the poll, then the
    /// gathering delay, and after a failure up to the longest retry wait before it works its backlog.</summary>
    public TimeSpan LongestRoutineWait => PollInterval + GatherDelay + MaxRetryDelay;

    /// <summary>A retention shorter than a node's longest routine wait (with a margin) would prune changes before a node's
    /// own consumers (which hold nothing back) read them, so each would reload its whole state over and over (review
    /// LE4, LG7). This checks this node's settings only: every node must share the ChangeFeed settings.</summary>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var least = LongestRoutineWait * RetentionMargin;
        if (Retention < least)
            yield return new ValidationResult(
                $"ChangeFeed:Retention ({Retention}) must be at least {RetentionMargin} x (ChangeFeed:PollInterval + ChangeFeed:GatherDelay + ChangeFeed:MaxRetryDelay) ({least}): "
                + "a node's own consumers hold no changes back, and would find them pruned before they read them.", [nameof(Retention)]);
    }

    /// <summary>A rebuild hold not refreshed for this long belongs to a run that died: pruning removes it (review LG1).</summary>
    public TimeSpan RebuildHoldExpiry => Retention > TimeSpan.FromDays(1) ? Retention : TimeSpan.FromDays(1);

    public TimeSpan DelayAfter(int failures)
    {
        var exponent = Math.Min(failures - 1, 30);
        return TimeSpan.FromMilliseconds(Math.Min(FirstRetryDelay.TotalMilliseconds * Math.Pow(2, exponent), MaxRetryDelay.TotalMilliseconds));
    }
}
