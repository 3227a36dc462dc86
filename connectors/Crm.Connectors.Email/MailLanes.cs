using MimeKit;
using MimeKit.Utils;

namespace Crm.Connectors.Email;

/// <summary>
/// Splits a fetched batch into lanes that can be handed off concurrently. Two mails share a lane when they may touch
/// the same conversation or customer: the same sender address (From, Sender or Reply-To), or a Message-ID of one named
/// by the other (Message-ID, In-Reply-To, References), or the same ticket tag in the subject. Within a lane the mails
/// keep their UID order, so a reply is never threaded before the mail it answers was stored.
/// </summary>
internal static class MailLanes
{
    private static readonly ParserOptions Parsing = ParserOptions.Default.Clone();

    /// <summary>The lanes of a batch (each in UID order), the lane holding the lowest UID first.</summary>
    public static IReadOnlyList<IReadOnlyList<(uint Uid, byte[] Raw)>> Split(IReadOnlyList<(uint Uid, byte[] Raw)> mails)
    {
        var parent = Enumerable.Range(0, mails.Count).ToArray();
        int Find(int i)
        {
            while (parent[i] != i)
                i = parent[i] = parent[parent[i]];
            return i;
        }
        var owner = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < mails.Count; i++)
        {
            foreach (var key in KeysOf(mails[i].Raw))
            {
                if (owner.TryGetValue(key, out var other))
                    parent[Find(i)] = Find(other);
                else
                    owner[key] = i;
            }
        }
        return mails.Select((mail, index) => (mail, lane: Find(index)))
            .GroupBy(x => x.lane)
            .Select(g => (IReadOnlyList<(uint, byte[])>)g.Select(x => x.mail).OrderBy(m => m.Uid).ToList())
            .OrderBy(lane => lane[0].Item1)
            .ToList();
    }

    /// <summary>What a mail may share with another: sender addresses, message ids, ticket tags. Only the header is read;
    /// a header that cannot be read yields a key of its own (the mail is quarantined by the hand-off anyway).</summary>
    internal const int MaxAddressKeys = 10;

    internal static IEnumerable<string> KeysOf(byte[] raw)
    {
        HeaderList headers;
        try
        {
            // A bounded prefix: a header flood must not cost memory before any limit is checked (G1).
            using var stream = new MemoryStream(MimeMessageMapper.HeaderPrefix(raw), writable: false);
            headers = HeaderList.Load(Parsing, stream);
        }
        catch (Exception ex) when (ex is FormatException or ParseException)
        {
            return ["raw:" + EmailIds.OfRawSource(raw)];
        }
        var keys = new List<string>();
        foreach (var header in headers)
        {
            switch (header.Id)
            {
                case HeaderId.From or HeaderId.Sender or HeaderId.ReplyTo:
                    // Only the first few senders: the mapper uses the first usable one, and a From of thousands of
                    // addresses must not become thousands of lane keys (review N2).
                    if (InternetAddressList.TryParse(Parsing, header.RawValue, out var addresses))
                        keys.AddRange(addresses.Mailboxes.Take(MaxAddressKeys).Select(m => "from:" + m.Address.Trim().ToLowerInvariant()));
                    break;
                case HeaderId.MessageId or HeaderId.InReplyTo or HeaderId.References:
                    // The newest ids only, as the mapper threads by (MimeMessageMapper.MaxReferencedIds); one pass, no lookups.
                    var ids = new Queue<string>();
                    foreach (var id in MimeUtils.EnumerateReferences(header.RawValue, 0, header.RawValue.Length))
                    {
                        if (EmailIds.Normalize(id) is not { } normalized)
                            continue;
                        ids.Enqueue("id:" + normalized);
                        if (ids.Count > MimeMessageMapper.MaxReferencedIds)
                            ids.Dequeue();
                    }
                    keys.AddRange(ids);
                    break;
                case HeaderId.Subject:
                    foreach (var number in EmailIds.TicketNumbers(header.Value))
                        keys.Add("tag:" + number.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    break;
            }
        }
        return keys.Count > 0 ? keys : ["raw:" + EmailIds.OfRawSource(raw)];
    }
}
