using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;

namespace Crm.Connectors.Api;

/// <summary>The settings of an API channel account (the admin API's <c>settings</c> for kind "api").</summary>
public sealed record ApiChannelSettings : IChannelSettings
{
    /// <summary>Where agent replies are posted, signed with the channel secret; none: replies are not delivered.</summary>
    public string? WebhookUrl { get; init; }

    /// <summary>Identity kinds ("email", "phone") this bridge may assert as global identities, joining the profiles of
    /// customers known on other channels. Empty (the default): its senders stay scoped to this channel.</summary>
    public IReadOnlyList<IdentityKind> TrustedIdentityKinds { get; init => field = value ?? []; } = [];

    public IEnumerable<SettingsProblem> Validate()
    {
        if (WebhookUrl is not null && (!Uri.TryCreate(WebhookUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
            yield return new SettingsProblem("webhookUrl", "webhookUrl must be an absolute http(s) URL.");
        foreach (var other in TrustedIdentityKinds.Where(k => k is not (IdentityKind.Email or IdentityKind.Phone)).Take(1))
            yield return new SettingsProblem("trustedIdentityKinds", $"An API channel can be trusted for \"email\" and \"phone\" identities only, not \"{other.ToString().ToLowerInvariant()}\".");
    }
}
