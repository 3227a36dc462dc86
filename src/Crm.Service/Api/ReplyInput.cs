using Crm.Service.Contracts;
using Crm.Service.Grains;
using Microsoft.AspNetCore.Http.Features;
using MimeKit;

namespace Crm.Service.Api;

/// <summary>What the API's multipart reply and the console's reply form share: Cc addresses checked as mailboxes, and
/// uploaded files read within the reply limits (<see cref="TicketOptions"/>) before anything is stored.</summary>
public static class ReplyInput
{
    /// <summary>Cc entries as typed (each may hold several, comma- or semicolon-separated) → one mailbox each, or an
    /// error naming the first that is not an address. Duplicates (ignoring case) are dropped.</summary>
    public static bool TryParseCc(IEnumerable<string?> entries, int max, out List<string> addresses, out string? error)
    {
        addresses = [];
        error = null;
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in entries)
        {
            if (string.IsNullOrWhiteSpace(entry))
                continue;
            if (entry.Length > InputLimits.MaxEmailAddressLength * (max + 1))
            {
                error = $"The Cc field is too long; at most {max} addresses.";
                return false;
            }
            if (!InternetAddressList.TryParse(entry.Replace(';', ','), out var list))
            {
                error = $"'{Shorten(entry)}' is not a list of email addresses.";
                return false;
            }
            foreach (var address in list)
            {
                // A group ("team: a@x, b@y;") or a bare name is refused: every copy goes to one mailbox the agent typed.
                var text = address.ToString();
                if (address is not MailboxAddress mailbox || !MailboxAddress.TryParse(text, out var parsed) || !parsed.Address.Contains('@')
                    || text.Length > InputLimits.MaxEmailAddressLength)
                {
                    error = $"'{Shorten(text)}' is not an email address.";
                    return false;
                }
                if (!seen.Add(mailbox.Address))
                    continue;
                if (addresses.Count == max)
                {
                    error = $"At most {max} Cc addresses per reply.";
                    return false;
                }
                addresses.Add(text);
            }
        }
        return true;
    }

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "…";

    /// <summary>The uploaded files, refused whole when there are too many or one is too large; an empty file input
    /// (a form posted without a file) is skipped.</summary>
    public static async Task<(List<InboundAttachment> Files, string? Error)> ReadFilesAsync(IFormFileCollection files, TicketOptions limits, CancellationToken cancellationToken)
    {
        var result = new List<InboundAttachment>();
        foreach (var file in files)
        {
            if (file.Length == 0 && string.IsNullOrEmpty(file.FileName))
                continue;
            if (result.Count == limits.MaxReplyAttachments)
                return (result, $"At most {limits.MaxReplyAttachments} files per reply.");
            if (file.Length > limits.MaxReplyAttachmentBytes)
                return (result, $"'{AttachmentRules.SanitizeFileName(file.FileName)}' is larger than {limits.MaxReplyAttachmentBytes / 1024 / 1024} MB (Tickets:MaxReplyAttachmentBytes).");
            using var content = new MemoryStream((int)file.Length);
            await file.CopyToAsync(content, cancellationToken);
            // The declared type is kept for the record only; the stored and sent type is sniffed from the bytes.
            result.Add(new InboundAttachment(file.FileName, file.ContentType, content.ToArray()));
        }
        return (result, null);
    }

    /// <summary>The largest multipart body a reply may send: every file at its limit plus room for the text fields.</summary>
    public static long MaxBodyBytes(TicketOptions limits) => limits.MaxReplyAttachments * limits.MaxReplyAttachmentBytes + 2 * 1024 * 1024;

    /// <summary>Reads the form with the reply's body limit instead of the server's default.</summary>
    public static Task<IFormCollection> ReadFormAsync(HttpRequest request, TicketOptions limits, CancellationToken cancellationToken)
    {
        var max = MaxBodyBytes(limits);
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
            size.MaxRequestBodySize = max;
        request.HttpContext.Features.Set<IFormFeature>(new FormFeature(request, new FormOptions
        {
            MultipartBodyLengthLimit = max,
            ValueLengthLimit = InputLimits.MaxMessageTextLength * 4,
        }));
        return request.ReadFormAsync(cancellationToken);
    }
}
