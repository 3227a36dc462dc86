using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Changes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Crm.Service.Infrastructure.Routing;

public static class RoutingExtensions
{
    /// <summary>Routing and SLA settings in the store and a log-only notifier unless the host registers its own.</summary>
    public static IServiceCollection AddCrmRouting(this IServiceCollection services)
    {
        services.TryAddSingleton<IRoutingStore, SqliteRoutingStore>();
        services.TryAddSingleton<ISlaNotifier, LoggingSlaNotifier>();
        services.TryAddSingleton<Grains.FollowUps.IFollowUpNotifier, LoggingFollowUpNotifier>();
        services.AddOptions<Grains.FollowUps.FollowUpOptions>().BindConfiguration(Grains.FollowUps.FollowUpOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<Grains.Assignment.IAgentPresenceLookup, Grains.Assignment.NobodyOnline>();
        return services;
    }

    /// <summary>The "sla" and "assignment" change consumers. They call grains, so only a silo's services can hold
    /// them (the host's <c>AddCrmSilo</c>), not a bare store.</summary>
    public static IServiceCollection AddRoutingConsumers(this IServiceCollection services)
    {
        services.AddChangeConsumer<SlaChangeConsumer>();
        services.AddChangeConsumer<AssignmentChangeConsumer>();
        return services;
    }
}
