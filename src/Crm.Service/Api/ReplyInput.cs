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
                // The stored text is parsed again by the SMTP sender with this very rule (IsEmailAddress): what passes
                // here is never refused there, after a 201, with the whole reply (review ER6).
                var text = address.ToString();
                if (address is not MailboxAddress mailbox || !MailboxAddress.TryParse(text, out var parsed) || !IdentityNormalizer.IsEmailAddress(parsed.Address)
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

    /// <summary>The uploaded files, refused whole when there are too many, one is too large or all together are over
    /// <see cref="TicketOptions.MaxReplyTotalBytes"/>; an empty file input (a form posted without a file) is skipped.
    /// All sizes are checked before any byte is read.</summary>
    public static async Task<(List<InboundAttachment> Files, string? Error)> ReadFilesAsync(IFormFileCollection files, TicketOptions limits, CancellationToken cancellationToken)
    {
        var chosen = files.Where(f => f.Length > 0 || !string.IsNullOrEmpty(f.FileName)).ToList();
        if (chosen.Count > limits.MaxReplyAttachments)
            return ([], $"At most {limits.MaxReplyAttachments} files per reply.");
        if (chosen.FirstOrDefault(f => f.Length > limits.MaxReplyAttachmentBytes) is { } tooBig)
            return ([], $"'{AttachmentRules.SanitizeFileName(tooBig.FileName)}' is larger than {Megabytes(limits.MaxReplyAttachmentBytes)} MB (Tickets:MaxReplyAttachmentBytes).");
        if (chosen.Sum(f => f.Length) is var total && total > limits.MaxReplyTotalBytes)
            return ([], $"The files are {Megabytes(total)} MB together; a reply may carry at most {Megabytes(limits.MaxReplyTotalBytes)} MB (Tickets:MaxReplyTotalBytes), so that the mail fits the mail servers' size limits.");
        var result = new List<InboundAttachment>(chosen.Count);
        foreach (var file in chosen)
        {
            // One exact-size array per file (review ER5): no MemoryStream growing on the large-object heap and copied again.
            var content = GC.AllocateUninitializedArray<byte>(checked((int)file.Length));
            await using (var stream = file.OpenReadStream())
                await stream.ReadExactlyAsync(content, cancellationToken);
            // The declared type is kept for the record only; the stored and sent type is sniffed from the bytes.
            result.Add(new InboundAttachment(file.FileName, file.ContentType, content));
        }
        return (result, null);
    }

    private static string Megabytes(long bytes) => (bytes / 1_000_000.0).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The largest multipart body a reply may send: its files at their limits plus room for the text fields.</summary>
    public static long MaxBodyBytes(TicketOptions limits) =>
        Math.Min(limits.MaxReplyAttachments * limits.MaxReplyAttachmentBytes, limits.MaxReplyTotalBytes) + 2 * 1024 * 1024;

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
