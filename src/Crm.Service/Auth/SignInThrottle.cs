using System.Globalization;
using System.Threading.RateLimiting;
using Crm.Service.Hosting;
using Microsoft.Extensions.Options;

namespace Crm.Service.Auth;

/// <summary>
/// Guessing limits for the console's public forms (sign-in and first-run setup), so that a stranger can neither
/// guess passwords at speed nor lock the real people out:
/// <list type="bullet">
/// <item>each client address may post those forms <see cref="ConsoleOptions.SignInPostsPerMinute"/> times a minute
/// (token bucket; more are answered 429 with Retry-After), which bounds password spraying across accounts;</item>
/// <item>failures are counted per (account, address): after <see cref="ConsoleOptions.MaxFailedSignIns"/> the account
/// refuses that address for <see cref="ConsoleOptions.LockoutDuration"/>, while the owner signing in from elsewhere is
/// not affected (Identity's account-wide lockout, which anyone could trigger, is used only for accounts an admin disables).</item>
/// </list>
/// In memory per node; a bounded table (oldest entries go first), so a flood of made-up accounts cannot grow it.
/// </summary>
public sealed class SignInThrottle(IOptions<ConsoleOptions> options, TimeProvider time) : IAsyncDisposable
{
    internal const int MaxTracked = 100_000;

    private sealed record Failures(int Count, DateTimeOffset Since);

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Failures> _failures = new(StringComparer.Ordinal);
    private readonly PartitionedRateLimiter<string> _posts = PartitionedRateLimiter.Create<string, string>(address =>
        RateLimitPartition.GetTokenBucketLimiter(address, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = options.Value.SignInPostsPerMinute,
            TokensPerPeriod = options.Value.SignInPostsPerMinute,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));

    /// <summary>Whether this address may post a guarded form now.</summary>
    public bool TryPost(string address)
    {
        using var lease = _posts.AttemptAcquire(address);
        return lease.IsAcquired;
    }

    public bool IsBlocked(string account, string address)
    {
        lock (_lock)
            return _failures.TryGetValue(Key(account, address), out var failures) && Current(failures) is { } live && live.Count >= options.Value.MaxFailedSignIns;
    }

    public void RecordFailure(string account, string address)
    {
        var key = Key(account, address);
        lock (_lock)
        {
            var live = _failures.TryGetValue(key, out var failures) ? Current(failures) : null;
            if (live is null && _failures.Count >= MaxTracked)
                Prune();
            _failures[key] = live is null ? new Failures(1, time.GetUtcNow()) : live with { Count = live.Count + 1 };
        }
    }

    public void Reset(string account, string address)
    {
        lock (_lock)
            _failures.Remove(Key(account, address));
    }

    /// <summary>Forgets the account's failures from every address (an admin re-enabled it).</summary>
    public void ResetAccount(string account)
    {
        var prefix = account.Trim().ToUpperInvariant() + "\n";
        lock (_lock)
            foreach (var key in _failures.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList())
                _failures.Remove(key);
    }

    private Failures? Current(Failures failures) => time.GetUtcNow() - failures.Since < options.Value.LockoutDuration ? failures : null;

    private void Prune()
    {
        foreach (var (key, failures) in _failures.ToList())
            if (Current(failures) is null)
                _failures.Remove(key);
        // Still full: drop the oldest half rather than grow.
        if (_failures.Count >= MaxTracked)
            foreach (var key in _failures.OrderBy(f => f.Value.Since).Take(_failures.Count / 2).Select(f => f.Key).ToList())
                _failures.Remove(key);
    }

    private static string Key(string account, string address) => account.Trim().ToUpperInvariant() + "\n" + address;

    public ValueTask DisposeAsync() => _posts.DisposeAsync();
}

public static class SignInThrottleExtensions
{
    private static readonly string[] GuardedPages = ["/Account/Login", "/Setup"];

    /// <summary>Answers 429 to a POST of the sign-in or setup form beyond the per-address budget.</summary>
    public static IApplicationBuilder UseSignInThrottle(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        if (HttpMethods.IsPost(http.Request.Method) && GuardedPages.Any(p => http.Request.Path.Equals(p, StringComparison.OrdinalIgnoreCase))
            && !http.RequestServices.GetRequiredService<SignInThrottle>().TryPost(ClientAddress.Of(http)))
        {
            http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
            http.Response.Headers.RetryAfter = "60";
            await http.Response.WriteAsync("Too many sign-in attempts from your address; wait a minute and try again.");
            return;
        }
        await next(http);
    });
}
