using System.ComponentModel.DataAnnotations;
using Crm.Service.Infrastructure;
using Microsoft.Extensions.Options;

namespace Crm.Service.Hosting;

public static class SiloExtensions
{
    /// <summary>The embedded deployment: the store, then one Orleans silo on localhost clustering with durable SQLite reminders.</summary>
    public static IHostApplicationBuilder AddCrmSilo(this IHostApplicationBuilder builder)
    {
        // The store registers first so it is migrated before the silo starts taking calls.
        builder.Services.AddCrmInfrastructure();
        var cluster = Bind<CrmClusterOptions>(builder.Configuration, CrmClusterOptions.Section);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(cluster.SiloPort, cluster.GatewayPort, serviceId: cluster.ServiceId, clusterId: cluster.ClusterId);
            silo.UseSqliteReminderService();
        });
        return builder;
    }

    /// <summary>Binds and validates options the host needs before the container exists, naming the bad setting.</summary>
    internal static T Bind<T>(IConfiguration configuration, string section) where T : class, new()
    {
        var options = configuration.GetSection(section).Get<T>() ?? new T();
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true))
            throw new OptionsValidationException(section, typeof(T),
                results.Select(r => $"{section}:{string.Join(",", r.MemberNames)}: {r.ErrorMessage}"));
        return options;
    }
}
