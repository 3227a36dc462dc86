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

    /// <summary>A retention shorter than a node's poll plus its longest retry wait would prune changes before a node's own
    /// consumers (which hold nothing back) read them, so each would reload its whole state over and over (review LE4).</summary>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Retention < PollInterval + MaxRetryDelay)
            yield return new ValidationResult(
                $"ChangeFeed:Retention ({Retention}) must be at least ChangeFeed:PollInterval + ChangeFeed:MaxRetryDelay ({PollInterval + MaxRetryDelay}): "
                + "a node's own consumers hold no changes back, and would find them pruned before they read them.", [nameof(Retention)]);
    }

    public TimeSpan DelayAfter(int failures)
    {
        var exponent = Math.Min(failures - 1, 30);
        return TimeSpan.FromMilliseconds(Math.Min(FirstRetryDelay.TotalMilliseconds * Math.Pow(2, exponent), MaxRetryDelay.TotalMilliseconds));
    }
}
