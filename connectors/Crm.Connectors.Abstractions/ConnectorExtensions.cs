using Crm.Service.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Crm.Connectors.Abstractions;

public static class ConnectorExtensions
{
    /// <summary>
    /// Registers a channel kind's settings type, and with it the kind: the admin API refuses a kind nobody registered.
    /// <paramref name="ownIdentityKinds"/> are the identity kinds the kind vouches for (see <see cref="IdentityScope"/>).
    /// Also registers the connector core (the inbound hand-off and the settings catalog) once.
    /// </summary>
    public static IServiceCollection AddChannelSettings<TSettings>(this IServiceCollection services, ChannelKind kind, params IdentityKind[] ownIdentityKinds)
        where TSettings : class, IChannelSettings
    {
        services.AddSingleton(new ChannelSettingsDefinition(kind, typeof(TSettings), ownIdentityKinds));
        return services.AddConnectorCore();
    }

    /// <summary>A check the admin API runs on an account of <typeparamref name="TCheck"/>'s kind before saving it
    /// (see <see cref="IChannelSettingsCheck"/>).</summary>
    public static IServiceCollection AddChannelSettingsCheck<TCheck>(this IServiceCollection services)
        where TCheck : class, IChannelSettingsCheck
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChannelSettingsCheck, TCheck>());
        return services;
    }

    /// <summary>The inbound hand-off and the settings catalog; an <see cref="IChannelAccounts"/> must be registered by the host.</summary>
    public static IServiceCollection AddConnectorCore(this IServiceCollection services)
    {
        services.TryAddSingleton<ChannelSettingsCatalog>();
        services.TryAddSingleton<ChannelSettingsChecks>();
        services.TryAddSingleton<IInboundHandOff, ConversationHandOff>();
        return services;
    }
}
