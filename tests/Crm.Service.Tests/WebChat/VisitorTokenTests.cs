using Crm.Connectors.WebChat;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.WebChat;

/// <summary>Visitor tokens on a fake clock: they name one visitor of one widget, expire, are renewed, and refuse edits.</summary>
public sealed class VisitorTokenTests
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
    private readonly VisitorTokens _tokens;

    public VisitorTokenTests() =>
        _tokens = new VisitorTokens(new EphemeralDataProtectionProvider(),
            Options.Create(new WebChatOptions { TokenLifetime = TimeSpan.FromDays(30), TokenRenewAfter = TimeSpan.FromDays(1) }), _clock);

    [Fact]
    public void A_token_names_its_visitor_until_it_expires_and_is_renewed_on_return_after_a_day()
    {
        var visitor = _tokens.NewVisitor("shop");
        var token = _tokens.Issue(visitor);

        Assert.Equal(visitor, _tokens.Read(token, "shop"));
        Assert.False(_tokens.IsDueForRenewal(visitor));
        _clock.Advance(TimeSpan.FromDays(2));
        Assert.True(_tokens.IsDueForRenewal(visitor));
        var renewed = _tokens.Renew(visitor, 1);
        Assert.Equal((visitor.VisitorId, visitor.SessionId, visitor.FirstIssuedAt), (renewed.VisitorId, renewed.SessionId, renewed.FirstIssuedAt));
        var renewedToken = _tokens.Issue(renewed);
        Assert.NotEqual(token, renewedToken);

        _clock.Advance(TimeSpan.FromDays(29));
        Assert.Null(_tokens.Read(token, "shop"));
        Assert.Equal(renewed, _tokens.Read(renewedToken, "shop"));
    }

    [Fact]
    public void Edited_foreign_and_garbage_tokens_name_nobody()
    {
        var token = _tokens.Issue(_tokens.NewVisitor("shop"));
        var edited = token[..10] + (token[10] == 'x' ? 'y' : 'x') + token[11..];
        var otherKeys = new VisitorTokens(new EphemeralDataProtectionProvider(), Options.Create(new WebChatOptions()), _clock);

        Assert.Null(_tokens.Read(edited, "shop"));
        Assert.Null(_tokens.Read(token, "other-widget"));
        Assert.Null(otherKeys.Read(token, "shop"));
        Assert.Null(_tokens.Read("", "shop"));
        Assert.Null(_tokens.Read(new string('A', 5000), "shop"));
        Assert.NotEqual(_tokens.NewVisitor("shop").VisitorId, _tokens.NewVisitor("shop").VisitorId);
    }
}
