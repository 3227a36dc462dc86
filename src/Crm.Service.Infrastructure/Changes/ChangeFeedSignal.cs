namespace Crm.Service.Infrastructure.Changes;

/// <summary>
/// Raised by the store after every successful commit, so consumers of the change feed wake at once instead of at
/// their next poll. Every waiting consumer wakes (unlike a semaphore, which would wake one).
/// </summary>
public sealed class ChangeFeedSignal
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the next commit. Take it before reading the feed, so a commit in between is not missed.</summary>
    public Task NextCommit => Volatile.Read(ref _next).Task;

    public void Notify() =>
        Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}
