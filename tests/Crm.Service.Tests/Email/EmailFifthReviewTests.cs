using System.Text;
using Crm.Connectors.Email;

namespace Crm.Service.Tests.Email;

/// <summary>The email review's findings N1-N3 (round five): header groups inside DSN parts, huge address lists and
/// huge References headers.</summary>
public sealed class EmailFifthReviewTests
{
    private static byte[] Report(string partType, string body, string? encoding = null) => Encoding.ASCII.GetBytes(
        "From: MAILER-DAEMON@example.test\r\nTo: support@example.test\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
        "Message-ID: <dsn-1@example.test>\r\nMIME-Version: 1.0\r\n" +
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n" +
        "--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n" +
        $"--b\r\nContent-Type: {partType}\r\n{(encoding is null ? "" : $"Content-Transfer-Encoding: {encoding}\r\n")}\r\n{body}\r\n--b--\r\n");

    // N1: MimeKit builds a Header per field of a message/delivery-status part (StatusGroups) or an MDN; the shape check
    // counted none of them, so a DSN of 40,000 status fields passed as a 10-header mail. (text/rfc822-headers is a
    // message part to MimeKit's reader: its fields were already counted as headers.)
    [Theory]
    [InlineData("message/delivery-status")]
    [InlineData("message/disposition-notification")]
    [InlineData("message/global-delivery-status")]
    public void The_fields_of_a_header_group_part_count_against_the_header_bound(string partType)
    {
        var groups = new StringBuilder("Reporting-MTA: dns; mx.example.test\r\n");
        for (var i = 0; i < 20_000; i++)
            groups.Append("\r\nFinal-Recipient: rfc822; r").Append(i).Append("@example.test\r\nAction: failed\r\n");
        Assert.True(MimeShape.Measure(Report(partType, groups.ToString()), 2000, 10_000).Headers > 10_000);

        // The same fields base64-encoded are counted too (from above: at most one field per three bytes).
        var encoded = Convert.ToBase64String(Encoding.ASCII.GetBytes(groups.ToString()), Base64FormattingOptions.InsertLineBreaks);
        Assert.True(MimeShape.Measure(Report(partType, encoded, "base64"), 2000, 10_000).Headers > 10_000);

        // A real DSN stays far below the bound, and a plain part of the same text lines is not counted as fields.
        var (_, small) = MimeShape.Measure(Report(partType, "Reporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; a@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"), 2000, 10_000);
        Assert.InRange(small, 4, 40);
        Assert.True(MimeShape.Measure(Report("text/plain", groups.ToString()), 2000, 10_000).Headers < 100);
    }

    // ER1: a From of 300,000 addresses is one header field, so the field count never noticed it, and MimeKit would
    // build an object per address. One over-long field stops the look, and the mail is stored unparsed.
    [Fact]
    public void One_header_field_longer_than_its_bound_is_named_and_a_normal_mail_passes()
    {
        var from = new StringBuilder("From: ");
        for (var i = 0; i < 300_000; i++)
            from.Append(i == 0 ? "" : ",\r\n ").Append("a").Append(i).Append("@example.test");
        var raw = Encoding.ASCII.GetBytes(from + "\r\nTo: support@example.test\r\nSubject: Hi\r\nMessage-ID: <long@example.test>\r\n\r\nHello\r\n");

        Assert.Equal("From", MimeShape.Measure(raw, 2000, 10_000, maxFieldBytes: 256 * 1024).LongField);
        Assert.Null(MimeShape.Measure(raw[..0].Concat(Encoding.ASCII.GetBytes("From: a@example.test\r\nTo: support@example.test\r\nSubject: Hi\r\n\r\nHello\r\n")).ToArray(),
            2000, 10_000, maxFieldBytes: 256 * 1024).LongField);
        // Without a field bound (the old look) the same mail passed as a four-header mail.
        Assert.Null(MimeShape.Measure(raw, 2000, 10_000).LongField);
        Assert.InRange(MimeShape.Measure(raw, 2000, 10_000).Headers, 1, 10);
    }

    // N3: the References dedupe was a List.Contains per id over the whole header (quadratic: 50,000 ids took
    // 1.25 billion comparisons). Now the list is walked from the newest id and the walk stops at the cap.
    [Fact]
    public void References_are_taken_newest_first_deduplicated_and_the_walk_stops_at_the_cap()
    {
        var references = new CountingList(Enumerable.Range(0, 50_000).Select(i => $"r{i % 25_000}@example.test").ToList());
        var ids = MimeMessageMapper.ReferencedIds("<parent@example.test>", references, MimeMessageMapper.MaxReferencedIds);
        Assert.Equal(MimeMessageMapper.MaxReferencedIds, ids.Count);
        Assert.Equal("parent@example.test", ids[0]);
        Assert.Equal("r24999@example.test", ids[1]);
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.InRange(references.Reads, 1, MimeMessageMapper.MaxReferencedIds * 10);

        // One id repeated 50,000 times: the walk is bounded too.
        var repeated = new CountingList(Enumerable.Repeat("same@example.test", 50_000).ToList());
        Assert.Equal(["same@example.test"], MimeMessageMapper.ReferencedIds(null, repeated, MimeMessageMapper.MaxReferencedIds));
        Assert.InRange(repeated.Reads, 1, MimeMessageMapper.MaxReferencedIds * 10);
    }

    // N2/N3: a From of 5,000 addresses and a References header of thousands of ids make a bounded number of lane keys.
    // Each header comes first in its own mail: the lanes read a 64 KB prefix, and a References header behind a 110 KB
    // From was never read, so that half could not fail (review ER14).
    [Fact]
    public void A_huge_from_list_and_references_header_make_a_bounded_number_of_lane_keys()
    {
        var from = string.Join(",\r\n ", Enumerable.Range(0, 5_000).Select(i => $"s{i}@example.test"));
        var keys = MailLanes.KeysOf(Encoding.ASCII.GetBytes($"From: {from}\r\nTo: support@example.test\r\nSubject: Hi\r\n\r\nBody\r\n")).ToList();
        Assert.Contains("from:s0@example.test", keys);
        Assert.Equal(MailLanes.MaxAddressKeys, keys.Count(k => k.StartsWith("from:", StringComparison.Ordinal)));

        // 2,500 ids (about 50 KB, inside the prefix), then the Message-ID: the newest 100 references and the mail's own id.
        var references = string.Join("\r\n ", Enumerable.Range(0, 2_500).Select(i => $"<r{i}@example.test>"));
        var raw = Encoding.ASCII.GetBytes($"References: {references}\r\nMessage-ID: <m@example.test>\r\nFrom: s@example.test\r\nSubject: Hi\r\n\r\nBody\r\n");
        Assert.True(raw.Length < 64 * 1024);
        var ids = MailLanes.KeysOf(raw).Where(k => k.StartsWith("id:", StringComparison.Ordinal)).ToList();
        Assert.Equal(MimeMessageMapper.MaxReferencedIds + 1, ids.Count);
        Assert.Contains("id:r2499@example.test", ids);
        Assert.DoesNotContain("id:r0@example.test", ids);
        Assert.Contains("id:m@example.test", ids);
    }

    private sealed class CountingList(List<string> items) : IList<string>
    {
        public int Reads { get; private set; }
        public string this[int index] { get { Reads++; return items[index]; } set => throw new NotSupportedException(); }
        public int Count => items.Count;
        public bool IsReadOnly => true;
        public IEnumerator<string> GetEnumerator()
        {
            foreach (var item in items)
            {
                Reads++;
                yield return item;
            }
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
        public int IndexOf(string item) => items.IndexOf(item);
        public bool Contains(string item) => items.Contains(item);
        public void CopyTo(string[] array, int arrayIndex) { Reads += items.Count; items.CopyTo(array, arrayIndex); }
        public void Add(string item) => throw new NotSupportedException();
        public void Insert(int index, string item) => throw new NotSupportedException();
        public bool Remove(string item) => throw new NotSupportedException();
        public void RemoveAt(int index) => throw new NotSupportedException();
        public void Clear() => throw new NotSupportedException();
    }
}
