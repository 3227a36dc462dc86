using System.Net;
using Crm.Service.Infrastructure;
using Crm.Service.Infrastructure.Routing;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Crm.Service.Hosting;

public static class SiloExtensions
{
    /// <summary>The embedded deployment: the store, then one Orleans silo on localhost clustering with durable SQLite reminders.</summary>
    public static IHostApplicationBuilder AddCrmSilo(this IHostApplicationBuilder builder)
    {
        // The store registers first so it is migrated before the silo starts taking calls.
        builder.Services.AddCrmInfrastructure();
        builder.Services.AddRoutingConsumers();
        builder.Services.AddOptions<CrmClusterOptions>().BindConfiguration(CrmClusterOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        // A node's name in rebuild holds: stable across its restarts, distinct from every other node's (review LG2).
        builder.Services.AddOptions<Crm.Service.Infrastructure.Changes.ChangeFeedOptions>().PostConfigure<IOptions<CrmClusterOptions>>((feed, cluster) =>
        {
            if (string.IsNullOrWhiteSpace(feed.NodeId))
                feed.NodeId = $"{Environment.MachineName}:{cluster.Value.SiloPort}";
        });
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering();
            // Ports and ids come from validated options, read when the silo starts (not while the builder is composed),
            // so every configuration source, test overrides included, applies.
            silo.Services.AddOptions<EndpointOptions>().Configure<IOptions<CrmClusterOptions>>((endpoint, cluster) =>
            {
                endpoint.SiloPort = cluster.Value.SiloPort;
                endpoint.GatewayPort = cluster.Value.GatewayPort;
            });
            silo.Services.AddOptions<DevelopmentClusterMembershipOptions>().Configure<IOptions<CrmClusterOptions>>((membership, cluster) =>
                membership.PrimarySiloEndpoint = new IPEndPoint(IPAddress.Loopback, cluster.Value.SiloPort));
            silo.Services.AddOptions<ClusterOptions>().Configure<IOptions<CrmClusterOptions>>((ids, cluster) =>
            {
                ids.ClusterId = cluster.Value.ClusterId;
                ids.ServiceId = cluster.Value.ServiceId;
            });
            silo.UseSqliteReminderService();
        });
        return builder;
    }
}
