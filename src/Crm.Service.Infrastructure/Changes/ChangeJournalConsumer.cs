using System.Globalization;
using System.Text;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Infrastructure.Changes;

/// <summary>
/// Appends every change as a line ("sequence entity id kind at") to a file, fsynced: a tap for diagnostics
/// (<c>tail -f</c> the feed) and the crash tests, enabled by <see cref="ChangeFeedOptions.JournalFile"/>. It is the
/// model of an idempotent consumer: the file's last complete line is its persisted high-water mark, so changes
/// handed again after a crash are skipped, and a line torn by a crash is cut off before the next append.
/// </summary>
internal sealed class ChangeJournalConsumer(string path) : IChangeConsumer
{
    private long? _applied;

    public string Name => "journal";

    public async Task HandleAsync(IReadOnlyList<Change> changes, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        _applied ??= await RecoverAsync(file, cancellationToken);
        var lines = new StringBuilder();
        foreach (var change in changes.Where(c => c.Sequence > _applied))
            lines.Append(CultureInfo.InvariantCulture, $"{change.Sequence} {change.Entity} {change.EntityId} {change.Kind} {change.At:O}\n");
        if (lines.Length == 0)
            return;
        file.Seek(0, SeekOrigin.End);
        await file.WriteAsync(Encoding.UTF8.GetBytes(lines.ToString()), cancellationToken);
        file.Flush(flushToDisk: true);
        _applied = changes[^1].Sequence;
    }

    /// <summary>The last applied sequence; cuts off a torn last line.</summary>
    private static async Task<long> RecoverAsync(FileStream file, CancellationToken cancellationToken)
    {
        var tail = new byte[(int)Math.Min(file.Length, 64 * 1024)];
        file.Seek(-tail.Length, SeekOrigin.End);
        await file.ReadExactlyAsync(tail, cancellationToken);
        var end = Array.LastIndexOf(tail, (byte)'\n');
        // Everything after the last newline is a line the crash cut short: it was never applied.
        file.SetLength(file.Length - tail.Length + end + 1);
        if (end < 0)
            return 0;
        var start = end == 0 ? 0 : Array.LastIndexOf(tail, (byte)'\n', end - 1) + 1;
        var line = Encoding.UTF8.GetString(tail, start, end - start);
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        return space > 0 ? long.Parse(line.AsSpan(0, space), CultureInfo.InvariantCulture) : 0;
    }
}
