namespace Crm.Service.Tests.Support;

/// <summary>
/// A test-only window into one grain activation, installed on the test silos as a grain extension so no grain
/// carries test code. Calls run on the activation's own scheduler, like any call to the grain.
/// </summary>
public interface IActivationProbe : IGrainExtension
{
    /// <summary>Which activation answered: a different id after a deactivation proves that a fresh one, with
    /// nothing in memory, serves the next call.</summary>
    Task<string> GetActivationIdAsync();

    /// <summary>Delivers a reminder tick now, as the reminder service would. Orleans ticks on real time, so a test
    /// that advances the grains' fake clock by days uses this instead of waiting.</summary>
    Task FireReminderAsync(string reminderName);
}

internal sealed class ActivationProbe(IGrainContext context) : IActivationProbe
{
    public Task<string> GetActivationIdAsync() => Task.FromResult(context.ActivationId.ToString());

    public Task FireReminderAsync(string reminderName) =>
        context.GrainInstance is IRemindable remindable
            ? remindable.ReceiveReminder(reminderName, default)
            : throw new InvalidOperationException($"{context.GrainId} does not take reminders.");
}
