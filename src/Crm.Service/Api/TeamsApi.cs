using Crm.Connectors.Abstractions;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Teams;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;

namespace Crm.Service.Api;

/// <summary>Teams as the admin API shows them: members by their sign-in email.</summary>
public sealed record TeamResource(string Id, string Name, bool Restricted, IReadOnlyList<string> Members, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>PUT body: the whole team (name, restricted flag, members by email).</summary>
public sealed record TeamRequest(string? Name, bool? Restricted, IReadOnlyList<string>? Members);

/// <summary>Admin API for teams (<c>/api/v1/admin/teams</c>), with the same rules as the console's Admin → Teams page.</summary>
public static class TeamsApi
{
    public static IEndpointRouteBuilder MapTeamsApi(this IEndpointRouteBuilder endpoints)
    {
        var teams = endpoints.MapGroup("/api/v1/admin/teams").RequireAuthorization(ApiKeyAuthenticationExtensions.AdminPolicy)
            .RequireRateLimiting(ApiKeyAuthenticationExtensions.RateLimitPolicy);
        teams.MapGet("/", ListAsync);
        teams.MapGet("/{id}", GetAsync);
        teams.MapPut("/{id}", PutAsync);
        teams.MapDelete("/{id}", DeleteAsync);
        return endpoints;
    }

    internal static async Task<Ok<List<TeamResource>>> ListAsync(TeamDirectory directory, UserManager<IdentityUser> users, CancellationToken cancellationToken)
    {
        var result = new List<TeamResource>();
        foreach (var team in await directory.ListAsync(cancellationToken))
            result.Add(await ResourceAsync(team, users));
        return TypedResults.Ok(result);
    }

    internal static async Task<Results<Ok<TeamResource>, ProblemHttpResult>> GetAsync(string id, TeamDirectory directory, UserManager<IdentityUser> users, CancellationToken cancellationToken) =>
        TeamDirectory.IsValidId(id) && await directory.GetAsync(id, cancellationToken) is { } team
            ? TypedResults.Ok(await ResourceAsync(team, users))
            : Problems.Of(ProblemKind.NotFound, $"No team '{id}'.", "id");

    internal static async Task<Results<Ok<TeamResource>, Created<TeamResource>, ProblemHttpResult>> PutAsync(
        string id, TeamRequest request, TeamDirectory directory, UserManager<IdentityUser> users, CancellationToken cancellationToken)
    {
        var checkedRequest = await TeamRules.CheckAsync(id, request.Name, request.Members ?? [], users);
        if (checkedRequest.Error is { } error)
            return Problems.Invalid(error.Field, error.Message);
        var (team, created) = await directory.SaveAsync(id, request.Name!.Trim(), request.Restricted ?? false, checkedRequest.MemberIds, cancellationToken);
        var resource = await ResourceAsync(team, users);
        return created ? TypedResults.Created($"/api/v1/admin/teams/{id}", resource) : TypedResults.Ok(resource);
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string id, TeamDirectory directory, CancellationToken cancellationToken) =>
        TeamDirectory.IsValidId(id) && await directory.DeleteAsync(id, cancellationToken)
            ? TypedResults.NoContent()
            : Problems.Of(ProblemKind.NotFound, $"No team '{id}'.", "id");

    private static async Task<TeamResource> ResourceAsync(TeamView team, UserManager<IdentityUser> users)
    {
        var emails = new List<string>();
        foreach (var id in team.MemberIds)
            if (await users.FindByIdAsync(id) is { } user)
                emails.Add(user.Email ?? user.UserName ?? id);
        emails.Sort(StringComparer.OrdinalIgnoreCase);
        return new TeamResource(team.Id, team.Name, team.Restricted, emails, team.CreatedAt, team.UpdatedAt);
    }
}

/// <summary>Validation shared by the teams API and the admin page: id, name, and members that are existing people.</summary>
public static class TeamRules
{
    public sealed record Checked(IReadOnlyList<string> MemberIds, (string Field, string Message)? Error);

    public static async Task<Checked> CheckAsync(string id, string? name, IReadOnlyCollection<string> memberEmails, UserManager<IdentityUser> users)
    {
        if (!TeamDirectory.IsValidId(id))
            return new([], ("id", "A team id is 1-64 lower-case letters, digits or '-' (it appears in URLs and on tickets)."));
        if (string.IsNullOrWhiteSpace(name) || name.Trim().Length > TeamDirectory.MaxNameLength)
            return new([], ("name", $"name is required (at most {TeamDirectory.MaxNameLength} characters)."));
        if (memberEmails.Count > TeamDirectory.MaxMembers)
            return new([], ("members", $"At most {TeamDirectory.MaxMembers} members."));
        var ids = new List<string>();
        foreach (var email in memberEmails.Select(e => e?.Trim()).Where(e => !string.IsNullOrEmpty(e)).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            if (await users.FindByEmailAsync(email!) is not { } user)
                return new([], ("members", $"No person signs in as '{email}': add them under Admin first."));
            ids.Add(user.Id);
        }
        return new(ids, null);
    }
}
