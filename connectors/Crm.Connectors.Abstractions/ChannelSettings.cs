using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Crm.Service.Contracts;

namespace Crm.Connectors.Abstractions;

/// <summary>The settings of one channel kind: a record bound from the admin API's <c>settings</c> object.</summary>
public interface IChannelSettings
{
    /// <summary>What is wrong with these settings; each problem names its field inside <c>settings</c> ("webhookUrl").</summary>
    IEnumerable<SettingsProblem> Validate();

    /// <summary>Identity kinds, beyond the channel kind's own, whose values this account may assert as global
    /// identities (see <see cref="IdentityScope"/>).</summary>
    IReadOnlyList<IdentityKind> TrustedIdentityKinds => [];
}

public sealed record SettingsProblem(string Field, string Detail);

/// <summary>
/// Marks a settings property holding a secret (a mailbox password, a bot token): encrypted at rest, never returned by
/// the admin API, and kept as stored when a PUT leaves it out.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SecretSettingAttribute : Attribute;

/// <summary>
/// An optional check a connector registers for its kind (<see cref="ConnectorExtensions.AddChannelSettingsCheck{TCheck}"/>),
/// run by the admin API before an account is saved: it asks the channel's server whether the settings work (Telegram's
/// getMe; a mail login, later) and may fill in what the server says about the account (the bot's username). A problem
/// refuses the save with a 422 naming the field, in the server's own words; nothing is stored.
/// </summary>
public interface IChannelSettingsCheck
{
    ChannelKind Kind { get; }

    /// <param name="accountId">The account being saved.</param>
    /// <param name="settings">The settings as they will be in effect: the request's, with the secrets it left out taken
    /// from the stored account.</param>
    /// <param name="stored">The account's settings before this save (when it is of the same kind), else null.</param>
    /// <param name="enabled">Whether the account is saved enabled. An admin must be able to disable an account whose
    /// login broke, so a check usually asks nothing of a disabled one.</param>
    Task<ChannelSettingsVerdict> CheckAsync(string accountId, IChannelSettings settings, IChannelSettings? stored, bool enabled, CancellationToken cancellationToken);
}

/// <summary>What a check made of the settings: <see cref="Settings"/> to save (possibly with facts from the server
/// filled in), or a <see cref="Problem"/> that refuses the save.</summary>
public sealed record ChannelSettingsVerdict(IChannelSettings Settings, SettingsProblem? Problem = null);

/// <summary>
/// Parses the admin API's settings (<see cref="ChannelSettingsCatalog.Parse"/>) and runs the kind's
/// <see cref="IChannelSettingsCheck"/>, if one is registered, against the settings as they will be in effect.
/// </summary>
public sealed class ChannelSettingsChecks(ChannelSettingsCatalog catalog, IChannelAccounts accounts, IEnumerable<IChannelSettingsCheck> checks)
{
    /// <exception cref="DomainException">The settings are invalid, or the check refused them (Invalid, "settings.x").</exception>
    public async Task<ParsedChannelSettings> ParseAsync(string accountId, ChannelKind kind, JsonObject? settings, bool enabled, CancellationToken cancellationToken)
    {
        var parsed = catalog.Parse(kind, settings);
        if (checks.LastOrDefault(c => c.Kind == kind) is not { } check)
            return parsed;
        var type = catalog.Find(kind)!.SettingsType;
        var stored = accounts.Find(accountId) is { Settings: { } before } account && account.Kind == kind && before.GetType() == type ? before : null;
        var effective = parsed.Settings;
        if (stored is not null)
        {
            var secrets = ChannelSettingsCatalog.Split(stored, type).Secrets;
            foreach (var (name, value) in parsed.Secrets)
                secrets[name] = value;
            effective = catalog.Compose(kind, parsed.PublicJson, secrets) ?? parsed.Settings;
        }
        var verdict = await check.CheckAsync(accountId, effective, stored, enabled, cancellationToken);
        if (verdict.Problem is { } problem)
            throw new DomainException(DomainErrorKind.Invalid, problem.Detail, "settings." + problem.Field);
        // What the check filled in goes to the public settings; the secrets saved stay the request's (a left-out one is
        // kept by the store as it is).
        return parsed with { Settings = verdict.Settings, PublicJson = ChannelSettingsCatalog.Split(verdict.Settings, type).PublicJson };
    }
}

/// <summary>A channel kind known to this deployment: its settings type and the identity kinds it asserts natively.</summary>
public sealed class ChannelSettingsDefinition(ChannelKind kind, Type settingsType, IReadOnlyList<IdentityKind> ownIdentityKinds)
{
    public ChannelKind Kind { get; } = kind;

    public Type SettingsType { get; } = settingsType;

    /// <summary>The identity kinds an account of this kind vouches for (an email channel's addresses); other kinds are scoped to the account.</summary>
    public IReadOnlyList<IdentityKind> OwnIdentityKinds { get; } = ownIdentityKinds;
}

/// <summary>Settings parsed from the admin API, split into what may be shown and the secrets (plain, to be encrypted by the store's writer).</summary>
public sealed record ParsedChannelSettings(IChannelSettings Settings, string PublicJson, IReadOnlyDictionary<string, string> Secrets);

/// <summary>
/// The registered channel kinds and the one JSON shape of their settings (web naming, enums by name, unknown members
/// refused). Parses and validates the admin API's <c>settings</c>, splits out secret fields, and puts stored settings
/// back together for the connectors.
/// </summary>
public sealed class ChannelSettingsCatalog(IEnumerable<ChannelSettingsDefinition> definitions)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false) },
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        MaxDepth = 8,
    };

    private readonly Dictionary<ChannelKind, ChannelSettingsDefinition> _definitions = definitions.ToDictionary(d => d.Kind);

    public IEnumerable<ChannelKind> Kinds => _definitions.Keys;

    public ChannelSettingsDefinition? Find(ChannelKind kind) => _definitions.GetValueOrDefault(kind);

    /// <summary>Binds and validates <paramref name="settings"/> (null or absent binds the defaults). Problems name
    /// their field as "settings.x".</summary>
    /// <exception cref="DomainException">The kind has no settings definition, or the settings are invalid.</exception>
    public ParsedChannelSettings Parse(ChannelKind kind, JsonObject? settings)
    {
        var definition = Find(kind)
            ?? throw new DomainException(DomainErrorKind.Invalid, $"This deployment has no connector for '{kind}' channels; known kinds: {string.Join(", ", _definitions.Keys)}.", "kind");
        IChannelSettings bound;
        try
        {
            bound = (IChannelSettings)(settings ?? []).Deserialize(definition.SettingsType, Json)!;
        }
        catch (JsonException ex)
        {
            var field = Problems.FieldOf(ex.Path);
            throw new DomainException(DomainErrorKind.Invalid, field is null ? $"settings is not valid: {ex.Message.Split(". ")[0]}." : $"'{field}' has the wrong type or is not a known setting.", field is null ? "settings" : "settings." + field);
        }
        if (bound.Validate().FirstOrDefault() is { } problem)
            throw new DomainException(DomainErrorKind.Invalid, problem.Detail, "settings." + problem.Field);

        var (publicJson, secrets) = Split(bound, definition.SettingsType);
        return new ParsedChannelSettings(bound, publicJson, secrets);
    }

    /// <summary>Settings as their public JSON and their secret fields (by dotted name).</summary>
    public static (string PublicJson, Dictionary<string, string> Secrets) Split(IChannelSettings settings, Type settingsType)
    {
        var node = JsonSerializer.SerializeToNode(settings, settingsType, Json)!.AsObject();
        var secrets = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in SecretNames(settingsType))
        {
            var (parent, member) = Locate(node, name);
            if (parent?[member] is JsonValue value && value.TryGetValue<string>(out var secret))
                secrets[name] = secret;
            parent?.Remove(member);
        }
        return (node.ToJsonString(Json), secrets);
    }

    /// <summary>Stored settings back as their type: the public JSON with the (decrypted) secrets put back in.
    /// Null when the kind is unknown here or the stored JSON no longer binds.</summary>
    public IChannelSettings? Compose(ChannelKind kind, string? publicJson, IReadOnlyDictionary<string, string> secrets)
    {
        if (Find(kind) is not { } definition)
            return null;
        try
        {
            var node = string.IsNullOrEmpty(publicJson) ? [] : JsonNode.Parse(publicJson)!.AsObject();
            foreach (var (name, value) in secrets)
            {
                var (parent, member) = Locate(node, name, create: true);
                parent![member] = value;
            }
            return (IChannelSettings?)node.Deserialize(definition.SettingsType, Json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The JSON names of a settings type's secret fields; a secret inside a nested settings object is named by
    /// its path ("imap.password").</summary>
    public static IReadOnlyList<string> SecretNames(Type settingsType) => SecretNames(settingsType, "", depth: 0);

    private static List<string> SecretNames(Type type, string prefix, int depth)
    {
        var names = new List<string>();
        foreach (var property in Json.GetTypeInfo(type).Properties)
        {
            if (property.AttributeProvider is ICustomAttributeProvider provider && provider.IsDefined(typeof(SecretSettingAttribute), inherit: true))
                names.Add(prefix + property.Name);
            else if (depth < 2 && property.PropertyType.IsClass && property.PropertyType != typeof(string)
                     && Json.GetTypeInfo(property.PropertyType).Kind == System.Text.Json.Serialization.Metadata.JsonTypeInfoKind.Object)
                names.AddRange(SecretNames(property.PropertyType, prefix + property.Name + ".", depth + 1));
        }
        return names;
    }

    /// <summary>The object holding the member a dotted secret name points at (created on the way when asked).</summary>
    private static (JsonObject? Parent, string Member) Locate(JsonObject root, string path, bool create = false)
    {
        var parts = path.Split('.');
        var current = root;
        foreach (var part in parts[..^1])
        {
            if (current[part] is JsonObject child)
                current = child;
            else if (create)
                current = (JsonObject)(current[part] = new JsonObject());
            else
                return (null, parts[^1]);
        }
        return (current, parts[^1]);
    }
}
