using Crm.Connectors.Abstractions;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
        // The EF Core key repository reads and writes through a scoped context.
        services.TryAddScoped(provider => provider.GetRequiredService<Microsoft.EntityFrameworkCore.IDbContextFactory<CrmDbContext>>().CreateDbContext());
        // The key ring lives in the store (shared by every node); keys earlier versions kept in the data folder are still
        // read. The folder comes from the validated store options, read when the key ring is first used, so test and
        // deployment overrides of Store:DataDirectory apply.
        // Keys are encrypted at rest with a key outside the database (Store:KeyRingKey or a file beside it); plain rows
        // and the old folder's keys are encrypted and imported on first use.
        services.TryAddSingleton<KeyRingKey>();
        services.TryAddSingleton<KeyRingEncryptor>();
        services.AddOptions<KeyManagementOptions>().Configure<IServiceProvider, IOptions<StoreOptions>, ILoggerFactory>((keys, provider, store, logs) =>
        {
            var encryptor = provider.GetRequiredService<KeyRingEncryptor>();
            keys.XmlEncryptor = encryptor;
            keys.XmlRepository = new StoreKeyRepository(
                new Microsoft.AspNetCore.DataProtection.EntityFrameworkCore.EntityFrameworkCoreXmlRepository<CrmDbContext>(provider, logs),
                provider.GetRequiredService<Microsoft.EntityFrameworkCore.IDbContextFactory<CrmDbContext>>(),
                encryptor,
                new DirectoryInfo(store.Value.KeyDirectory),
                logs.CreateLogger<StoreKeyRepository>());
        });
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
