using System.Text.RegularExpressions;
using Crm.Connectors.Abstractions;

namespace Crm.Connectors.WebChat;

public enum WidgetPosition
{
    BottomRight,
    BottomLeft,
}

/// <summary>A text in the widget's two languages; the widget follows the page's (else the browser's) language.</summary>
public sealed record LocalizedText
{
    public string? En { get; init; }
    public string? Zh { get; init; }
}

/// <summary>The settings of a web chat widget (the admin API's <c>settings</c> for kind "webchat"). Everything here but
/// <see cref="AllowedOrigins"/>, <see cref="Team"/> and <see cref="EmailChannel"/> is public: the widget's config endpoint shows it to any page.</summary>
public sealed partial record WebChatSettings : IChannelSettings
{
    public const int MaxUploadBytesLimit = 25 * 1024 * 1024;

    /// <summary>The sites that may embed the widget: "https://shop.example.com" (scheme, host and port, as a browser
    /// sends them in Origin). Empty: the widget works nowhere; an admin must list every site.</summary>
    public IReadOnlyList<string> AllowedOrigins { get; init => field = value ?? []; } = [];

    /// <summary>Accent colour of the launcher and the header, "#rrggbb".</summary>
    public string Colour { get; init; } = "#1f6feb";

    public LocalizedText Title { get; init => field = value ?? new(); } = new() { En = "Chat with us", Zh = "在线客服" };

    public LocalizedText Greeting { get; init => field = value ?? new(); } = new() { En = "Hi! How can we help?", Zh = "您好！有什么可以帮您？" };

    public WidgetPosition Position { get; init; } = WidgetPosition.BottomRight;

    /// <summary>The team that answers this widget (used for the offline form: no agent of it online).</summary>
    public string? Team { get; init; }

    /// <summary>Ask for name and email before the first message.</summary>
    public bool PreChatForm { get; init; }

    /// <summary>The email channel account (kind email) that mails visitors their verification codes, transcripts and the
    /// answers to offline messages; none: the widget offers no email features.</summary>
    public string? EmailChannel { get; init; }

    /// <summary>Largest file a visitor may upload; 0: uploads off.</summary>
    public int MaxUploadBytes { get; init; } = 5 * 1024 * 1024;

    /// <summary>Content types a visitor may upload ("image/png", "application/pdf").</summary>
    public IReadOnlyList<string> UploadContentTypes { get; init => field = value ?? []; } = ["image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain"];

    public IEnumerable<SettingsProblem> Validate()
    {
        if (AllowedOrigins.Count > 50)
            yield return new SettingsProblem("allowedOrigins", "A widget may list at most 50 origins.");
        foreach (var origin in AllowedOrigins)
        {
            if (NormalizeOrigin(origin) is null)
            {
                yield return new SettingsProblem("allowedOrigins", $"'{origin}' is not an origin: write scheme, host and optional port, e.g. \"https://shop.example.com\" (no path, no wildcard).");
                yield break;
            }
        }
        if (!ColourPattern().IsMatch(Colour))
            yield return new SettingsProblem("colour", "colour must be \"#rrggbb\", e.g. \"#1f6feb\".");
        foreach (var (field, text) in new[] { ("title.en", Title.En), ("title.zh", Title.Zh) })
            if (text?.Length > 60)
                yield return new SettingsProblem(field, "A title is at most 60 characters.");
        foreach (var (field, text) in new[] { ("greeting.en", Greeting.En), ("greeting.zh", Greeting.Zh) })
            if (text?.Length > 500)
                yield return new SettingsProblem(field, "A greeting is at most 500 characters.");
        if (Team?.Length > 64)
            yield return new SettingsProblem("team", "team is at most 64 characters.");
        if (EmailChannel is not null && !Crm.Service.Contracts.GrainKeys.IsValidChannelAccountId(EmailChannel))
            yield return new SettingsProblem("emailChannel", "emailChannel must be the id of an email channel account, e.g. \"support\".");
        if (MaxUploadBytes is < 0 or > MaxUploadBytesLimit)
            yield return new SettingsProblem("maxUploadBytes", $"maxUploadBytes must be between 0 (uploads off) and {MaxUploadBytesLimit}.");
        foreach (var type in UploadContentTypes)
            if (!ContentTypePattern().IsMatch(type))
            {
                yield return new SettingsProblem("uploadContentTypes", $"'{type}' is not a content type like \"image/png\".");
                yield break;
            }
    }

    /// <summary>"https://Shop.Example.com:443/" → "https://shop.example.com"; null when it is not an http(s) origin.</summary>
    public static string? NormalizeOrigin(string? origin)
    {
        if (string.IsNullOrWhiteSpace(origin) || origin.Contains('*', StringComparison.Ordinal)
            || !Uri.TryCreate(origin.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
            || (uri.AbsolutePath != "/" && uri.AbsolutePath != "") || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0)
            return null;
        return uri.GetLeftPart(UriPartial.Authority).ToLowerInvariant();
    }

    public bool AllowsOrigin(string? origin) =>
        NormalizeOrigin(origin) is { } normalized && AllowedOrigins.Any(o => NormalizeOrigin(o) == normalized);

    [GeneratedRegex("^#[0-9a-fA-F]{6}$")]
    private static partial Regex ColourPattern();

    [GeneratedRegex("^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")]
    private static partial Regex ContentTypePattern();
}
