using System.Collections.Concurrent;
using System.Globalization;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Tests.Changes;

/// <summary>Records every batch it is handed; <see cref="Handle"/> lets a test fail or block a call.</summary>
internal sealed class RecordingConsumer(string name) : IChangeConsumer
{
    private readonly ConcurrentQueue<IReadOnlyList<Change>> _handled = new();
    private readonly ConcurrentQueue<long> _attemptStarts = new();

    public string Name => name;

    /// <summary>Runs before a batch counts as handled; throwing makes the call fail.</summary>
    public Func<IReadOnlyList<Change>, CancellationToken, Task>? Handle { get; set; }

    public IReadOnlyList<IReadOnlyList<Change>> Batches => [.. _handled];

    public IReadOnlyList<long> Sequences => [.. _handled.SelectMany(b => b).Select(c => c.Sequence)];

    /// <summary>The first sequence of every call, failed ones included.</summary>
    public IReadOnlyList<long> AttemptStarts => [.. _attemptStarts];

    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        _attemptStarts.Enqueue(changes[0].Sequence);
        if (Handle is { } handle)
            await handle(changes, cancellationToken);
        _handled.Enqueue(changes);
    }
}

/// <summary>
/// An idempotent consumer with durable effects: it applies a change by appending its sequence to a journal file
/// (fsynced), and the journal's last line is its persisted high-water mark, so changes handed again after a crash
/// are skipped instead of applied twice. <see cref="AfterApply"/> is the point where a test crashes it.
/// </summary>
internal sealed class JournalConsumer(string name, string path) : IChangeConsumer
{
    private readonly ConcurrentQueue<long> _skipped = new();

    public string Name => name;

    public Func<CancellationToken, Task>? BeforeApply { get; set; }

    public Func<CancellationToken, Task>? AfterApply { get; set; }

    /// <summary>Changes handed again that were already applied.</summary>
    public IReadOnlyList<long> Skipped => [.. _skipped];

    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        if (BeforeApply is { } before)
            await before(cancellationToken);
        var mark = Applied(path).LastOrDefault();
        foreach (var change in changes.Where(c => c.Sequence <= mark))
            _skipped.Enqueue(change.Sequence);
        var fresh = changes.Where(c => c.Sequence > mark).ToList();
        if (fresh.Count > 0)
        {
            await using var journal = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
            await journal.WriteAsync(System.Text.Encoding.UTF8.GetBytes(string.Concat(fresh.Select(c => c.Sequence.ToString(CultureInfo.InvariantCulture) + "\n"))), cancellationToken);
            journal.Flush(flushToDisk: true);
        }
        if (AfterApply is { } after)
            await after(cancellationToken);
    }

    /// <summary>The sequences applied so far, in the order they were applied.</summary>
    public static List<long> Applied(string path) =>
        File.Exists(path)
            ? [.. File.ReadAllLines(path).Where(l => l.Length > 0).Select(l => long.Parse(l, CultureInfo.InvariantCulture))]
            : [];
}
