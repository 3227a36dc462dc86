using System.Text;
using AngleSharp.Dom;
using AngleSharp.Html.Parser;
using Ganss.Xss;

namespace Crm.Service.Infrastructure.Html;

/// <summary>HtmlSanitizer with our policy: no scripts, event handlers or forms (its defaults), and no remote
/// loads: a remote image keeps its address in data-remote-src so the console can load it after the agent consents.</summary>
internal sealed class HtmlSanitizerAdapter : Grains.Storage.IHtmlSanitizer
{
    private readonly HtmlSanitizer _sanitizer;

    public HtmlSanitizerAdapter()
    {
        _sanitizer = new HtmlSanitizer();
        _sanitizer.AllowedSchemes.Add("cid");
        _sanitizer.AllowedSchemes.Add("mailto");
        _sanitizer.AllowedSchemes.Add("tel");
        _sanitizer.AllowedAttributes.Add("data-remote-src");
        _sanitizer.AllowDataAttributes = false;
        _sanitizer.PostProcessNode += (_, e) =>
        {
            if (e.Node is IElement element)
            {
                if (element.LocalName is "img" or "video" or "audio" or "source" && element.GetAttribute("src") is { } src
                    && (src.StartsWith("http:", StringComparison.OrdinalIgnoreCase) || src.StartsWith("https:", StringComparison.OrdinalIgnoreCase) || src.StartsWith("//", StringComparison.Ordinal)))
                {
                    element.RemoveAttribute("src");
                    element.SetAttribute("data-remote-src", src);
                }
                if (element.LocalName == "a" && element.HasAttribute("href"))
                {
                    element.SetAttribute("rel", "noopener noreferrer nofollow");
                    element.SetAttribute("target", "_blank");
                }
            }
        };
        _sanitizer.AllowedAttributes.Add("rel");
        _sanitizer.AllowedAttributes.Add("target");
    }

    public string Sanitize(string html) => _sanitizer.Sanitize(html);

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
