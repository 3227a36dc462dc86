using System.Security.Claims;
using Crm.Service.Grains.Records;
using Microsoft.AspNetCore.Identity;

namespace Crm.Service.Auth;

/// <summary>
/// API keys that belong to a person (the foundation's keys with an owner). A key never grants more than its owner's
/// console roles: an "agent" key needs Agent or Supervisor, an "admin" key needs Admin; a KnowledgeEditor alone gets
/// none. Its name is "{email}/{label}", so the audit actor (apikey:{name}) says whose it is.
/// </summary>
public sealed class PersonalApiKeys(ApiKeyDirectory keys)
{
    public const int MaxLabelLength = 60;

    public static IReadOnlyList<string> RolesFor(IList<string> consoleRoles)
    {
        var roles = new List<string>();
        if (consoleRoles.Contains(ConsoleRoles.Agent) || consoleRoles.Contains(ConsoleRoles.Supervisor))
            roles.Add(Roles.Agent);
        if (consoleRoles.Contains(ConsoleRoles.Admin))
            roles.Add(Roles.Admin);
        return roles;
    }

    public static IReadOnlyList<string> RolesFor(ClaimsPrincipal user) =>
        RolesFor([.. ConsoleRoles.All.Where(user.IsInRole)]);

    /// <summary>Creates a key for <paramref name="owner"/>; returns the key (shown once) or an error to show.</summary>
    public async Task<(ApiKeyRecord? Record, string? Key, string? Error)> CreateAsync(IdentityUser owner, IList<string> ownerRoles, string? label, string? role, CancellationToken cancellationToken)
    {
        label = label?.Trim();
        if (string.IsNullOrEmpty(label) || label.Length > MaxLabelLength || label.Any(char.IsControl))
            return (null, null, $"Name the key (what uses it), at most {MaxLabelLength} characters.");
        var allowed = RolesFor(ownerRoles);
        if (role is null || !allowed.Contains(role))
            return (null, null, allowed.Count == 0
                ? "This person has no role that API keys can carry (Agent, Supervisor or Admin)."
                : $"The key's role must be one of: {string.Join(", ", allowed)}.");
        var (record, key) = await keys.CreateAsync($"{owner.Email ?? owner.UserName}/{label}", role, cancellationToken: cancellationToken, ownerId: owner.Id);
        return (record, key, null);
    }
}
