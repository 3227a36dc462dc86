using Crm.Connectors.Abstractions;
using Microsoft.AspNetCore.Identity;

namespace Crm.Service.Auth;

/// <summary>Agents' addresses are the console users' (confirmed or not; a locked-out user still is an agent's address).</summary>
internal sealed class ConsoleAgentAddresses(IServiceScopeFactory scopes) : IAgentAddresses
{
    public async Task<bool> IsAgentAsync(string emailAddress, CancellationToken cancellationToken = default)
    {
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        return await users.FindByEmailAsync(emailAddress) is not null;
    }
}
