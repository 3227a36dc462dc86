namespace Crm.Service.Contracts;

/// <summary>The one place grain keys are built from domain ids, so no key is ever built two ways.</summary>
public static class GrainKeys
{
    /// <summary>"{channelAccountId}:{threadKey}". The account id never contains ':' (checked when it is created).</summary>
    public static string Conversation(string channelAccountId, string threadKey) => $"{channelAccountId}:{threadKey}";

    public static (string ChannelAccountId, string ThreadKey) ParseConversation(string key)
    {
        var colon = key.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
            throw new FormatException($"'{key}' is not a conversation key (expected 'account:thread').");
        return (key[..colon], key[(colon + 1)..]);
    }

    /// <summary>The identity key of a sender: normalized so that one address is always one key.</summary>
    public static string Identity(IdentityKind kind, string value, string channelAccountId) =>
        IdentityNormalizer.Key(kind, value, channelAccountId);

    /// <summary>A channel account id: 1-64 lower-case letters, digits or '-' (so it never contains the ':' of a conversation key).</summary>
    public static bool IsValidChannelAccountId(string id) =>
        id.Length is >= 1 and <= 64 && id.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');
}
