using System.Globalization;
using System.Security.Cryptography;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.WebChat;

/// <summary>
/// Who a visitor is: a widget, a visitor id and the conversation (session) they may read and write, as vouched for by
/// this server. The widget keeps the token in localStorage; it is the only proof of identity a visitor has.
/// </summary>
public sealed record Visitor(string WidgetId, string VisitorId, string SessionId, DateTimeOffset IssuedAt, int Generation = 0, DateTimeOffset? Born = null)
{
    /// <summary>When the visitor's first token was issued: renewals keep it, and no token outlives <see cref="WebChatOptions.TokenMaxAge"/> from it.</summary>
    public DateTimeOffset FirstIssuedAt => Born ?? IssuedAt;

    /// <summary>The key of the visitor's <see cref="IWebChatVisitorGrain"/>.</summary>
    public string VisitorKey => WebChatVisitorGrain.Key(WidgetId, VisitorId);

    /// <summary>The visitor's identity value (kind WebChat): scoped to the widget, so a visitor id means nothing elsewhere.</summary>
    public string IdentityValue => $"{WidgetId}/{VisitorId}";

    /// <summary>The conversation grain key (thread key = the session id).</summary>
    public string ConversationKey => GrainKeys.Conversation(WidgetId, SessionId);
}

/// <summary>
/// Issues and reads visitor tokens, encrypted and authenticated with ASP.NET Core Data Protection (the key ring under
/// <c>Store:DataDirectory/keys</c>, rotated by Data Protection every 90 days; old keys still read old tokens). A token
/// expires after <see cref="WebChatOptions.TokenLifetime"/> and is renewed on return after
/// <see cref="WebChatOptions.TokenRenewAfter"/>; it cannot be edited (the protector refuses any changed byte), so a
/// visitor cannot name another visitor or another conversation.
/// </summary>
public sealed class VisitorTokens(IDataProtectionProvider protection, IOptions<WebChatOptions> options, TimeProvider time)
{
    private readonly IDataProtector _protector = protection.CreateProtector("Crm.WebChat.VisitorToken.v1");

    public Visitor NewVisitor(string widgetId)
    {
        var now = time.GetUtcNow();
        return new(widgetId, NewId(), NewId(), now, 0, now);
    }

    /// <summary>The same visitor in a new conversation (after the visitor ended the last one), in token generation <paramref name="generation"/>.</summary>
    public Visitor NewSession(Visitor visitor, int generation) => visitor with { SessionId = NewId(), IssuedAt = time.GetUtcNow(), Generation = generation, Born = visitor.FirstIssuedAt };

    /// <summary>The same visitor and conversation with a fresh issue time in token generation <paramref name="generation"/>
    /// (the token rotates: the visitor's grain refuses the old generation after a short grace).</summary>
    public Visitor Renew(Visitor visitor, int generation) => visitor with { IssuedAt = time.GetUtcNow(), Generation = generation, Born = visitor.FirstIssuedAt };

    public string Issue(Visitor visitor) => _protector.Protect(string.Join('\n', "v2", visitor.WidgetId, visitor.VisitorId, visitor.SessionId,
        Seconds(visitor.IssuedAt), visitor.Generation.ToString(CultureInfo.InvariantCulture), Seconds(visitor.FirstIssuedAt)));

    /// <summary>The visitor the token names, when it is ours, unexpired and for <paramref name="widgetId"/>; else null.</summary>
    public Visitor? Read(string? token, string widgetId)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 2048)
            return null;
        string plain;
        try
        {
            plain = _protector.Unprotect(token);
        }
        catch (CryptographicException)
        {
            return null;
        }
        var parts = plain.Split('\n');
        // v1 tokens (before generations) are generation 0, born when issued.
        var (widget, visitorId, sessionId, issued, generationText, born) = parts switch
        {
            ["v2", var w, var v, var s, var i, var g, var b] => (w, v, s, i, g, b),
            ["v1", var w, var v, var s, var i] => (w, v, s, i, "0", i),
            _ => default,
        };
        if (widget != widgetId || !TryTime(issued, out var issuedAt) || !TryTime(born, out var bornAt)
            || !int.TryParse(generationText, NumberStyles.None, CultureInfo.InvariantCulture, out var generation))
            return null;
        var now = time.GetUtcNow();
        // Renewal keeps a visitor's tokens fresh, but not for ever: past TokenMaxAge from the first token the visitor
        // starts afresh, so a copied token cannot be kept alive by renewing it.
        if (now - issuedAt > options.Value.TokenLifetime || now - bornAt > options.Value.TokenMaxAge)
            return null;
        return new Visitor(widget, visitorId!, sessionId!, issuedAt, generation, bornAt);
    }

    private static string Seconds(DateTimeOffset at) => at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);

    private static bool TryTime(string? text, out DateTimeOffset at)
    {
        at = default;
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds > 253402300799)
            return false;
        at = DateTimeOffset.FromUnixTimeSeconds(seconds);
        return true;
    }

    public bool IsDueForRenewal(Visitor visitor) => time.GetUtcNow() - visitor.IssuedAt > options.Value.TokenRenewAfter;

    private static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
}
