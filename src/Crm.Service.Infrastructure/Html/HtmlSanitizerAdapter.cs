using System.Text;
using System.Text.RegularExpressions;
using AngleSharp.Dom;
using AngleSharp.Html.Parser;
using Ganss.Xss;

namespace Crm.Service.Infrastructure.Html;

/// <summary>
/// The one HTML policy for every HTML we store, customer messages and agent replies alike. HtmlSanitizer's
/// defaults already drop scripts, handlers, frames, style blocks and media; on top of them:
/// <list type="bullet">
/// <item>no forms or form controls: a message must not put a login form inside the agent console (phishing);</item>
/// <item>no url() (nor image-set() and the like) in styles: a background image is a read receipt for the sender;</item>
/// <item>no remote loads at all: a remote image keeps its address in data-remote-src so the console can load it
/// after the agent consents; every other attribute holding a remote address is dropped (only a link's href stays,
/// opened in a new tab without opener or referrer);</item>
/// <item>cid: images (inline parts of the same email) stay.</item>
/// </list>
/// </summary>
internal sealed partial class HtmlSanitizerAdapter : Grains.Storage.IHtmlSanitizer
{
    /// <summary>Form elements removed with their content (a button's or option's text means nothing on its own).</summary>
    private static readonly string[] FormControls = ["input", "button", "textarea", "select", "option", "optgroup", "datalist", "output", "keygen"];

    /// <summary>Form containers removed but their content kept: some newsletters wrap the whole body in a form.</summary>
    private static readonly HashSet<string> FormContainers = ["form", "fieldset", "legend", "label"];

    /// <summary>Form attributes, useless without forms, and contenteditable, which turns any element into a text
    /// field; image maps go too, since an area is a link we do not mark like links.</summary>
    private static readonly string[] FormAttributes =
    [
        "action", "method", "enctype", "accept", "accept-charset", "novalidate", "autocomplete", "autosave", "form", "formaction",
        "formenctype", "formmethod", "formnovalidate", "formtarget", "for", "list", "pattern", "placeholder", "required", "readonly",
        "checked", "selected", "multiple", "maxlength", "step", "wrap", "prompt", "challenge", "keytype", "contenteditable", "usemap", "ismap",
    ];

    /// <summary>Attributes of human-readable text, where an address is words and nothing loads it.</summary>
    private static readonly HashSet<string> TextAttributes = ["alt", "title", "abbr", "summary"];

    private static readonly char[] UrlTrim = [.. Enumerable.Range(0, 33).Select(i => (char)i)];

    private readonly HtmlSanitizer _sanitizer;

    public HtmlSanitizerAdapter()
    {
        _sanitizer = new HtmlSanitizer();
        _sanitizer.AllowedSchemes.Add("cid");
        _sanitizer.AllowedSchemes.Add("mailto");
        _sanitizer.AllowedSchemes.Add("tel");
        foreach (var tag in FormControls.Concat(FormContainers).Append("map").Append("area").Append("style"))
            _sanitizer.AllowedTags.Remove(tag);
        foreach (var attribute in FormAttributes)
            _sanitizer.AllowedAttributes.Remove(attribute);
        _sanitizer.AllowedAttributes.Add("data-remote-src");
        _sanitizer.AllowedAttributes.Add("rel");
        _sanitizer.AllowedAttributes.Add("target");
        _sanitizer.AllowDataAttributes = false;
        // No at-rule survives (no @import, @font-face, @media) should style blocks ever be allowed.
        _sanitizer.AllowedAtRules.Clear();
        // Checked against each declaration's value after CSS escapes and comments are decoded (u\72l( is url(),
        // so is URL( ); a match removes the declaration, the others on the element stay.
        _sanitizer.DisallowCssPropertyValue = DisallowedCssValue();
        _sanitizer.RemovingTag += (_, e) =>
        {
            if (!FormContainers.Contains(e.Tag.LocalName))
                return;
            e.Cancel = true;
            if (e.Tag.HasChildNodes)
                e.Tag.Replace([.. e.Tag.ChildNodes]);
            else
                e.Tag.Remove();
        };
        _sanitizer.PostProcessNode += (_, e) =>
        {
            if (e.Node is IElement element)
                ApplyLoadPolicy(element);
        };
    }

    public string Sanitize(string html) => _sanitizer.Sanitize(html);

    private static void ApplyLoadPolicy(IElement element)
    {
        if (element.LocalName == "img" && element.GetAttribute("src") is { } src && IsRemote(src))
        {
            element.RemoveAttribute("src");
            element.SetAttribute("data-remote-src", src);
        }
        foreach (var attribute in element.Attributes.ToList())
        {
            var keep = attribute.Name switch
            {
                "data-remote-src" => element.LocalName == "img" && IsRemote(attribute.Value),
                "href" when element.LocalName == "a" => true,
                "style" => !DisallowedCssValue().IsMatch(attribute.Value),
                _ => TextAttributes.Contains(attribute.Name) || !IsRemote(attribute.Value),
            };
            if (!keep)
                element.RemoveAttribute(attribute.Name);
        }
        if (element.LocalName == "a" && element.HasAttribute("href"))
        {
            element.SetAttribute("rel", "noopener noreferrer nofollow");
            element.SetAttribute("target", "_blank");
        }
    }

    /// <summary>Whether a browser would fetch this from another host: http(s) or scheme-relative, read the way it
    /// reads a URL (tabs and newlines dropped, control characters and spaces trimmed, backslashes as slashes, so
    /// <c>/\host/x</c> is <c>//host/x</c>).</summary>
    private static bool IsRemote(string value)
    {
        var url = value.Replace("\t", "", StringComparison.Ordinal).Replace("\n", "", StringComparison.Ordinal).Replace("\r", "", StringComparison.Ordinal)
            .Trim(UrlTrim).Replace('\\', '/');
        return url.StartsWith("http:", StringComparison.OrdinalIgnoreCase) || url.StartsWith("https:", StringComparison.OrdinalIgnoreCase)
            || url.StartsWith("//", StringComparison.Ordinal);
    }

    /// <summary>The default's angle brackets, and every CSS function that loads an image, a font or a sheet.</summary>
    [GeneratedRegex(@"[<>]|(?:url|image-set|image|cross-fade|src)\s*\(", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex DisallowedCssValue();

    public string ToPlainText(string html)
    {
        var document = new HtmlParser().ParseDocument(html);
        foreach (var element in document.QuerySelectorAll("script, style, head"))
            element.Remove();
        var text = new StringBuilder();
        Append(document.Body ?? (INode)document, text);
        return CollapseBlankLines(text.ToString());
    }

    private static void Append(INode node, StringBuilder text)
    {
        foreach (var child in node.ChildNodes)
        {
            if (child is IText t)
                text.Append(t.Data);
            else if (child is IElement e)
            {
                var block = e.LocalName is "p" or "div" or "br" or "li" or "tr" or "h1" or "h2" or "h3" or "h4" or "h5" or "h6" or "blockquote" or "pre" or "table";
                if (block && e.LocalName != "br")
                    text.Append('\n');
                Append(e, text);
                if (block)
                    text.Append('\n');
            }
        }
    }

    private static string CollapseBlankLines(string text)
    {
        var lines = text.Replace("\r", "", StringComparison.Ordinal).Split('\n').Select(l => l.TrimEnd());
        var result = new StringBuilder();
        var blank = 0;
        foreach (var line in lines)
        {
            blank = line.Length == 0 ? blank + 1 : 0;
            if (blank <= 1)
                result.Append(line).Append('\n');
        }
        return result.ToString().Trim();
    }
}
