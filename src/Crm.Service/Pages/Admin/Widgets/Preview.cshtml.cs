using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Crm.Service.Pages.Admin.Widgets;

/// <summary>
/// The page in the widget page's preview frame: a blank "site" with the real widget.js in preview mode, drawn from the
/// look given in the query (the edit form's values, unsaved). The widget contacts nothing in preview mode; every text is
/// put on the page by the widget with textContent. Review WC6: it is served only as a frame of a console page
/// (<c>Sec-Fetch-Dest: iframe</c>, <c>Sec-Fetch-Site: same-origin</c>, which every current browser sends and no page can
/// forge), so a link that opens it with someone's text in the chat window (content spoofing on the console's origin)
/// gets 404.
/// </summary>
public sealed partial class PreviewModel : PageModel
{
    /// <summary>The widget's look as JSON for its <c>data-preview</c> attribute.</summary>
    public string Look { get; private set; } = "{}";

    public string Id { get; private set; } = "";

    public string Language { get; private set; } = "en";

    public IActionResult OnGet(string id, string? colour, string? position, string? titleEn, string? titleZh, string? greetingEn, string? greetingZh, bool preChatForm, string? lang)
    {
        if (!GrainKeys.IsValidChannelAccountId(id) || Request.Headers["Sec-Fetch-Dest"] != "iframe" || Request.Headers["Sec-Fetch-Site"] != "same-origin")
            return NotFound();
        Id = id;
        Language = lang == "zh" ? "zh" : "en";
        Look = JsonSerializer.Serialize(new
        {
            colour = colour is not null && Colour().IsMatch(colour) ? colour : "#1f6feb",
            position = position == "bottomLeft" ? "bottomLeft" : "bottomRight",
            title = new { en = Cut(titleEn, 60), zh = Cut(titleZh, 60) },
            greeting = new { en = Cut(greetingEn, 500), zh = Cut(greetingZh, 500) },
            preChatForm,
        });
        // The console's policy forbids framing and inline styles; this page is framed by the console itself, and the
        // widget's styles live in a <style> element of its shadow root.
        Response.Headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
            "connect-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
        HttpContext.Items[AgentConsole.AgentConsoleExtensions.FrameableByConsole] = true;
        return Page();
    }

    private static string? Cut(string? text, int max) => string.IsNullOrWhiteSpace(text) ? null : text.Length > max ? text[..max] : text;

    [GeneratedRegex("^#[0-9a-fA-F]{6}$")]
    private static partial Regex Colour();
}
