namespace Crm.Service.Tests.Support;

/// <summary>Waits for an eventual outcome (a reminder, an outbox retry). The timeout only bounds a failing test;
/// nothing asserts on how long it took.</summary>
internal static class Eventually
{
    public static async Task<T> WaitForAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        T last;
        while (true)
        {
            last = await probe();
            if (done(last))
                return last;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Gave up waiting for {what ?? "the condition"}; last value: {last}");
            await Task.Delay(100);
        }
    }
}
