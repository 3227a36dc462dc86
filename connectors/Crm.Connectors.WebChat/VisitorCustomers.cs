using Crm.Service.Contracts;
using Microsoft.Extensions.Logging;

namespace Crm.Connectors.WebChat;

/// <summary>Joins a visitor who proved an email address to that address's customer.</summary>
internal static class VisitorCustomers
{
    internal const string Actor = "webchat:verified-email";

    /// <summary>
    /// The visitor's WebChat identity moves to the customer of <paramref name="email"/> (created when new). A visitor who
    /// has written already has a customer of their own: when that customer is only this visitor (the normal case), it is
    /// merged into the address's customer, so its tickets move too; when an agent had joined it with other identities,
    /// only this visitor's identity moves (a visitor's proof of one address never merges two real customers).
    /// </summary>
    public static async Task LinkAsync(IGrainFactory grains, Visitor visitor, string email, string? name, ILogger logger)
    {
        var target = await grains.GetGrain<IIdentityGrain>(GrainKeys.Identity(IdentityKind.Email, email, visitor.WidgetId)).ResolveCustomerAsync(name);
        var visitorIdentity = grains.GetGrain<IIdentityGrain>(GrainKeys.Identity(IdentityKind.WebChat, visitor.IdentityValue, visitor.WidgetId));
        var current = await visitorIdentity.GetCustomerAsync();
        if (current == target)
            return;
        if (current is { } own && await grains.GetGrain<ICustomerGrain>(own).GetAsync() is { MergedInto: null, Identities.Count: 1 })
        {
            await grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers).MergeCustomersAsync(own, target, Actor);
            logger.LogInformation("Web chat visitor {Visitor} proved {Email}: customer {Source} merged into {Target}", visitor.IdentityValue, email, own, target);
            return;
        }
        await visitorIdentity.LinkToCustomerAsync(target, Actor);
    }
}
