using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Crm.Service.Tests.Support;

internal static class FakeGrainClock
{
    /// <summary>
    /// Gives the grains (and the rest of our code, which asks for the unkeyed <see cref="TimeProvider"/>) a fake clock,
    /// while every Orleans subsystem keeps real time. Orleans resolves each area's clock under a key that defaults to
    /// the unkeyed provider; left there, membership, messaging timeouts and reminder delivery would stop with the fake.
    /// </summary>
    public static IServiceCollection AddFakeGrainClock(this IServiceCollection services, FakeTimeProvider? clock = null)
    {
        services.AddSingleton<TimeProvider>(clock ?? new FakeTimeProvider(DateTimeOffset.UtcNow));
        foreach (var key in OrleansClockKeys())
            services.AddKeyedSingleton(key, TimeProvider.System);
        return services;
    }

    private static IEnumerable<string> OrleansClockKeys() =>
        new[] { typeof(Orleans.Runtime.TimeProviderNames), typeof(Orleans.Reminders.ReminderTimeProviderNames) }
            .SelectMany(names => names.GetFields(BindingFlags.Public | BindingFlags.Static))
            .Where(field => field.IsLiteral && field.FieldType == typeof(string))
            .Select(field => (string)field.GetRawConstantValue()!);
}
