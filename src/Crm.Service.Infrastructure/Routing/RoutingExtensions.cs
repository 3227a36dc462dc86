using Crm.Service.Grains.Sla;
using Crm.Service.Infrastructure.Changes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Crm.Service.Infrastructure.Routing;

public static class RoutingExtensions
{
    /// <summary>Routing and SLA settings in the store, the "sla" change consumer, and a log-only notifier unless the host registers its own.</summary>
    public static IServiceCollection AddCrmRouting(this IServiceCollection services)
    {
        services.TryAddSingleton<IRoutingStore, SqliteRoutingStore>();
        services.TryAddSingleton<ISlaNotifier, LoggingSlaNotifier>();
        services.AddChangeConsumer<SlaChangeConsumer>();
        services.AddChangeConsumer<AssignmentChangeConsumer>();
        return services;
    }
}
