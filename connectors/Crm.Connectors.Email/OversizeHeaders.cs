using MimeKit;

namespace Crm.Connectors.Email;

/// <summary>The few headers of a mail too large to parse whole: only its header block is read.</summary>
internal static class OversizeHeaders
{
    public static (string? MessageId, string? From, string? Subject) Read(byte[] raw)
    {
        try
        {
            using var stream = new MemoryStream(MimeMessageMapper.HeaderPrefix(raw), writable: false);
            var headers = HeaderList.Load(stream);
            var from = headers[HeaderId.From] is { } value && InternetAddressList.TryParse(value, out var list) ? list.Mailboxes.FirstOrDefault()?.Address : null;
            return (headers[HeaderId.MessageId], from, headers[HeaderId.Subject]);
        }
        catch (Exception ex) when (ex is FormatException or ParseException)
        {
            return (null, null, null);
        }
    }
}
