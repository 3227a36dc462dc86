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
public sealed record Visitor(string WidgetId, string VisitorId, string SessionId, DateTimeOffset IssuedAt)
{
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

    public Visitor NewVisitor(string widgetId) => new(widgetId, NewId(), NewId(), time.GetUtcNow());

    /// <summary>The same visitor in a new conversation (after the visitor ended the last one).</summary>
    public Visitor NewSession(Visitor visitor) => visitor with { SessionId = NewId(), IssuedAt = time.GetUtcNow() };

    /// <summary>The same visitor and conversation with a fresh issue time (the token rotates; the old one still works until it expires).</summary>
    public Visitor Renew(Visitor visitor) => visitor with { IssuedAt = time.GetUtcNow() };

    public string Issue(Visitor visitor) => _protector.Protect(string.Join('\n', "v1", visitor.WidgetId, visitor.VisitorId, visitor.SessionId,
        visitor.IssuedAt.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)));

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
        if (parts is not ["v1", var widget, var visitorId, var sessionId, var issued] || widget != widgetId
            || !long.TryParse(issued, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
            return null;
        var issuedAt = DateTimeOffset.FromUnixTimeSeconds(seconds);
        return time.GetUtcNow() - issuedAt > options.Value.TokenLifetime ? null : new Visitor(widget, visitorId, sessionId, issuedAt);
    }

    public bool IsDueForRenewal(Visitor visitor) => time.GetUtcNow() - visitor.IssuedAt > options.Value.TokenRenewAfter;

    private static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
}
