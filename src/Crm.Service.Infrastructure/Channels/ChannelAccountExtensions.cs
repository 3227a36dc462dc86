using Crm.Connectors.Abstractions;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Channels;

public static class ChannelAccountExtensions
{
    /// <summary>The in-memory channel directory (also a change feed consumer), account health, and secrets encrypted at
    /// rest with Data Protection keys kept in the data folder (<see cref="StoreOptions.KeyDirectory"/>).</summary>
    public static IServiceCollection AddChannelAccounts(this IServiceCollection services)
    {
        services.AddDataProtection().SetApplicationName("Crm.Service");
        // The folder comes from the validated store options, read when the key ring is first used, so test and
        // deployment overrides of Store:DataDirectory apply.
        services.AddOptions<KeyManagementOptions>().Configure<IOptions<StoreOptions>, ILoggerFactory>((keys, store, logs) =>
            keys.XmlRepository = new FileSystemXmlRepository(new DirectoryInfo(store.Value.KeyDirectory), logs));
        services.AddSingleton<ISecretProtector, DataProtectionSecretProtector>();

        services.AddConnectorCore();
        services.AddSingleton<ChannelAccountDirectory>();
        services.AddSingleton<IChannelAccounts>(provider => provider.GetRequiredService<ChannelAccountDirectory>());
        services.AddSingleton<IChangeConsumer>(provider => provider.GetRequiredService<ChannelAccountDirectory>());
        services.AddHostedService(provider => provider.GetRequiredService<ChannelAccountDirectory>());
        services.AddSingleton<IChannelHealth, ChannelHealthReporter>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, LegacySecretSweep>();
        return services;
    }
}
