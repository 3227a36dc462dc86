using System.Security.Cryptography;

namespace Crm.Service.Grains.Storage;

/// <summary>
/// Blobs put under a durable writer's hold (<see cref="IBlobHolds"/>), which lasts until this is disposed: every blob
/// writer (replies, inbound attachments and raw sources, customer documents, knowledge-base files, quarantined mail)
/// disposes it only after the commit of the rows naming the bytes, so no node's deleter removes them in between
/// (review EM7 EN3). A writer never puts before the hold: a delete in progress is waited for, then the put restores the bytes.
/// </summary>
public sealed class HeldBlobs : IAsyncDisposable
{
    private readonly IAsyncDisposable? _hold;

    private HeldBlobs(IAsyncDisposable? hold, IReadOnlyList<StoredBlob> blobs)
    {
        _hold = hold;
        Blobs = blobs;
    }

    /// <summary>The stored blobs, in the order of the contents given.</summary>
    public IReadOnlyList<StoredBlob> Blobs { get; }

    public ValueTask DisposeAsync() => _hold?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary>Holds the contents' hashes, then puts them (fsynced). None given: nothing is held.</summary>
    public static async Task<HeldBlobs> HoldAndPutAsync(IBlobHolds holds, IBlobStore store, IReadOnlyList<ReadOnlyMemory<byte>> contents, CancellationToken cancellationToken)
    {
        if (contents.Count == 0)
            return new HeldBlobs(null, []);
        var hold = await holds.HoldAsync([.. contents.Select(c => Convert.ToHexStringLower(SHA256.HashData(c.Span)))], cancellationToken);
        try
        {
            var stored = new List<StoredBlob>(contents.Count);
            foreach (var content in contents)
                stored.Add(await store.PutAsync(content, cancellationToken));
            return new HeldBlobs(hold, stored);
        }
        catch
        {
            await hold.DisposeAsync();
            throw;
        }
    }
}
