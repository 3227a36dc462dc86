namespace Crm.Connectors.Email;

/// <summary>Cuts the new UIDs of a folder into fetch batches bounded by count and by bytes (from RFC822.SIZE).</summary>
internal static class MailBatches
{
    /// <summary>
    /// Consecutive batches in UID order, each at most <paramref name="maxCount"/> mails and at most
    /// <paramref name="maxBytes"/> of bodies to download (a single mail larger than that is a batch of its own). A mail
    /// over <paramref name="maxMessageBytes"/> counts as nothing: only its header is fetched. A UID without a size
    /// (expunged between SEARCH and FETCH) counts as nothing either.
    /// </summary>
    public static IEnumerable<IReadOnlyList<uint>> Split(IReadOnlyList<uint> uids, IReadOnlyDictionary<uint, long> sizes, int maxCount, long maxBytes, long maxMessageBytes)
    {
        var batch = new List<uint>();
        long bytes = 0;
        foreach (var uid in uids)
        {
            var size = sizes.TryGetValue(uid, out var known) && known <= maxMessageBytes ? known : 0;
            if (batch.Count > 0 && (batch.Count == maxCount || bytes + size > maxBytes))
            {
                yield return batch;
                batch = [];
                bytes = 0;
            }
            batch.Add(uid);
            bytes += size;
        }
        if (batch.Count > 0)
            yield return batch;
    }
}
