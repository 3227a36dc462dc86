using System.Security.Cryptography;
using AngleSharp.Html.Parser;
using MimeKit;

namespace Crm.Service.AgentConsole;

/// <summary>
/// A message's stored (already sanitized) HTML as the console's body frame shows it: <c>cid:</c> images point at the
/// ticket's own inline-image handler when the Content-ID is an attachment of that same message, and remote images
/// (kept in <c>data-remote-src</c> by the HTML policy) load only when the agent asked for them on this message.
/// </summary>
public static class MessageBodyView
{
    /// <summary>Image types the inline handler serves with their own type (SVG never: it is a document).</summary>
    public static readonly IReadOnlySet<string> InlineImageTypes = new HashSet<string>(StringComparer.Ordinal)
        { "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp" };

    public static bool HasRemoteImages(string? html) => html?.Contains("data-remote-src", StringComparison.Ordinal) == true;

    public static bool HasCidReferences(string? html) => html?.Contains("cid:", StringComparison.OrdinalIgnoreCase) == true;

    /// <summary>The inline parts of a raw email that are stored as attachments of its message, by Content-ID. The
    /// stored attachment keeps no Content-ID, so a part is matched to the attachment by the SHA-256 of its decoded
    /// bytes (what the blob store names it by), among that one message's image attachments only.</summary>
    public static IReadOnlyDictionary<string, Guid> InlineImages(Stream rawEmail, IEnumerable<(Guid Id, string Sha256, string ContentType)> attachments)
    {
        var bySha = new Dictionary<string, Guid>(StringComparer.OrdinalIgnoreCase);
        foreach (var (id, sha256, contentType) in attachments)
            if (InlineImageTypes.Contains(contentType))
                bySha.TryAdd(sha256, id);
        var map = new Dictionary<string, Guid>(StringComparer.OrdinalIgnoreCase);
        if (bySha.Count == 0)
            return map;
        MimeMessage message;
        try
        {
            message = MimeMessage.Load(rawEmail);
        }
        catch (FormatException)
        {
            return map;
        }
        foreach (var part in message.BodyParts.OfType<MimePart>())
        {
            if (part.ContentId is not { Length: > 0 } contentId || part.Content is null)
                continue;
            using var bytes = new MemoryStream();
            try
            {
                part.Content.DecodeTo(bytes);
            }
            catch (FormatException)
            {
                continue;
            }
            if (bySha.TryGetValue(Convert.ToHexStringLower(SHA256.HashData(bytes.ToArray())), out var attachment))
                map.TryAdd(contentId, attachment);
        }
        return map;
    }

    /// <summary>Whether a consented remote image may load: an absolute http(s) address ("scheme://host…") on another
    /// host than the console's own. "https:?handler=Timeline" or the console's own address would resolve to the
    /// console and go with the agent's cookie (review RE1), so they never load.</summary>
    internal static bool IsForeignImage(string remote, string? consoleAuthority) =>
        (remote.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || remote.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        && Uri.TryCreate(remote, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Host.Length > 0
        && !string.Equals(uri.Authority, consoleAuthority, StringComparison.OrdinalIgnoreCase);

    /// <summary>Attributes that make a browser load something.</summary>
    private static readonly string[] LoadingAttributes = ["src", "srcset", "background", "poster", "lowsrc", "dynsrc"];

    /// <summary>The frame's document: every src (and srcset, background, poster) the sender wrote is dropped except a cid:
    /// of this message's own image attachment, which points at the inline handler.</summary>
    public static string Render(string html, long ticketNumber, IReadOnlyDictionary<string, Guid> inlineImages, bool remoteImages, string? consoleAuthority = null)
    {
        var document = new HtmlParser().ParseDocument(html);
        // The frame is same-origin (allow-same-origin), so whatever it loads goes with the agent's cookie: nothing the
        // sender wrote may load (review RC4: <img src="?handler=Timeline"> ×5,000 made every viewer render thousands of
        // pages). Only the inline-image URLs set below and consented remote images load.
        foreach (var element in document.QuerySelectorAll("[src], [srcset], [background], [poster], [lowsrc], [dynsrc]"))
            foreach (var name in LoadingAttributes)
                if (!(name == "src" && element.LocalName == "img" && element.GetAttribute(name) is { } kept && kept.StartsWith("cid:", StringComparison.OrdinalIgnoreCase)))
                    element.RemoveAttribute(name);
        foreach (var image in document.QuerySelectorAll("img"))
        {
            if (image.GetAttribute("src") is { } src)
            {
                // Only a cid: of this message's own image attachment loads; others go (they would resolve to nothing).
                if (src.StartsWith("cid:", StringComparison.OrdinalIgnoreCase) && inlineImages.TryGetValue(ContentIdOf(src), out var attachment))
                    image.SetAttribute("src", $"/Tickets/{ticketNumber}?handler=Inline&id={attachment}");
                else
                    image.RemoveAttribute("src");
            }
            if (remoteImages && image.GetAttribute("data-remote-src") is { } remote && IsForeignImage(remote, consoleAuthority))
            {
                image.SetAttribute("src", remote);
                image.SetAttribute("referrerpolicy", "no-referrer");
                image.RemoveAttribute("data-remote-src");
            }
        }
        var meta = document.CreateElement("meta");
        meta.SetAttribute("charset", "utf-8");
        document.Head!.Prepend(meta);
        return "<!DOCTYPE html>" + document.DocumentElement.OuterHtml;
    }

    /// <summary>The body frame's policy: no script, no form, no plugin; images only from this ticket's own page path
    /// (its inline-image handler: a CSP source cannot name a query string, so Render drops every other src), and from
    /// anywhere on http(s) only after the agent's consent for this message.</summary>
    public static string ContentSecurityPolicy(string origin, long ticketNumber, bool remoteImages) =>
        $"default-src 'none'; img-src {origin}/Tickets/{ticketNumber}{(remoteImages ? " https: http:" : "")}; style-src 'unsafe-inline'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox allow-same-origin";

    /// <summary>RFC 2392: "cid:" plus the URL-encoded Content-ID without its angle brackets.</summary>
    private static string ContentIdOf(string src)
    {
        var value = src[4..].Trim();
        try
        {
            value = Uri.UnescapeDataString(value);
        }
        catch (UriFormatException)
        {
        }
        return value.Trim('<', '>');
    }
}
