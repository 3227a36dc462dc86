using Crm.Service.Grains.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Crm.Service.Infrastructure.Changes;

public static class ChangeFeedExtensions
{
    /// <summary>The change feed's reader, commit signal and dispatcher. Consumers register with <see cref="AddChangeConsumer{T}"/>.</summary>
    public static IServiceCollection AddChangeFeed(this IServiceCollection services)
    {
        // Registered once: a second hosted dispatcher would hand every change twice.
        if (services.Any(d => d.ServiceType == typeof(ChangeFeedDispatcher)))
            return services;
        services.AddOptions<ChangeFeedOptions>().BindConfiguration(ChangeFeedOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<ChangeFeedSignal>();
        services.TryAddSingleton<ChangeFeedStatus>();
        services.TryAddSingleton<SqliteChangeFeed>();
        services.TryAddSingleton<IChangeFeed>(provider => provider.GetRequiredService<SqliteChangeFeed>());
        services.TryAddSingleton(provider => new ChangeConsumerGates(provider.GetRequiredService<SqliteChangeFeed>(), provider.GetRequiredService<ChangeFeedSignal>(),
            () => provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<ChangeFeedOptions>>().Value, provider.GetService<TimeProvider>() ?? TimeProvider.System));
        services.AddSingleton<ChangeFeedDispatcher>();
        services.AddHostedService(provider => provider.GetRequiredService<ChangeFeedDispatcher>());
        return services;
    }

    /// <summary>Subscribes <typeparamref name="TConsumer"/> (a singleton) to the change feed.</summary>
    public static IServiceCollection AddChangeConsumer<TConsumer>(this IServiceCollection services)
        where TConsumer : class, IChangeConsumer
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChangeConsumer, TConsumer>());
        return services;
    }
}
