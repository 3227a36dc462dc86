using System.Security.Claims;
using System.Threading.RateLimiting;
using Crm.Connectors.Abstractions;
using Crm.Service.Hosting;
using Microsoft.Extensions.Options;

namespace Crm.Service.Api;

/// <summary>How many file uploads this node reads at once (<c>Uploads</c> section, review ER5): each holds its files in
/// memory (up to <c>Tickets:MaxReplyTotalBytes</c> or a knowledge-base file's limit), so a few parallel large uploads
/// from one key must not take gigabytes. The per-key request rate does not bound that; this does, for all callers.</summary>
public sealed class UploadOptions
{
    public const string Section = "Uploads";

    /// <summary>Uploads read at the same time on this node (default 4).</summary>
    public int MaxConcurrent { get; set; } = 4;

    /// <summary>Uploads waiting for a turn (default 16); beyond it an upload is refused with 429 and Retry-After.</summary>
    public int MaxQueued { get; set; } = 16;

    /// <summary>Uploads one caller (an API key, a signed-in person) has read at the same time on this node (default 2);
    /// beyond it that caller's next upload is refused at once (review RA2): one key with many slow uploads cannot hold
    /// every turn and queue slot and shut everyone else's uploads off.</summary>
    public int MaxConcurrentPerCaller { get; set; } = 2;
}

/// <summary>The node's concurrency limit of uploads: a share per caller in front of the node's one limiter.</summary>
internal sealed class UploadGate : IDisposable
{
    /// <summary>The console's field error when no turn is free.</summary>
    public const string BusyMessage = "Too many files are being uploaded right now; try again in a moment.";

    private readonly PartitionedRateLimiter<string> _perCaller;

    public UploadGate(IOptions<UploadOptions> options)
    {
        var limits = options.Value;
        Limiter = new(new ConcurrencyLimiterOptions
        {
            PermitLimit = limits.MaxConcurrent,
            QueueLimit = limits.MaxQueued,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        // No queue per caller: a caller's extra uploads never wait in (and so never fill) the node's queue.
        _perCaller = PartitionedRateLimiter.Create<string, string>(caller => RateLimitPartition.GetConcurrencyLimiter(caller,
            _ => new ConcurrencyLimiterOptions { PermitLimit = limits.MaxConcurrentPerCaller, QueueLimit = 0 }));
    }

    /// <summary>The node's one limiter (every caller's turns).</summary>
    public ConcurrencyLimiter Limiter { get; }

    /// <summary>Who an upload counts against: the API key or console person, else (unauthenticated) the client address.</summary>
    public static string CallerOf(HttpContext http) =>
        http.User.FindFirst(ClaimTypes.NameIdentifier)?.Value is { } id
            ? (http.User.Identity?.AuthenticationType ?? "user") + ":" + id
            : "address:" + ClientAddress.Of(http);

    /// <summary>Takes a turn for <paramref name="caller"/>: its own share first (refused at once when used up), then
    /// the node's (queued up to MaxQueued). Null when refused; dispose the turn when the upload's bytes are let go.</summary>
    public async ValueTask<IDisposable?> EnterAsync(string caller, CancellationToken cancellationToken)
    {
        var own = _perCaller.AttemptAcquire(caller);
        if (!own.IsAcquired)
        {
            own.Dispose();
            return null;
        }
        RateLimitLease node;
        try
        {
            node = await Limiter.AcquireAsync(1, cancellationToken);
        }
        catch
        {
            own.Dispose();
            throw;
        }
        if (!node.IsAcquired)
        {
            node.Dispose();
            own.Dispose();
            return null;
        }
        return new Turn(node, own);
    }

    /// <inheritdoc cref="EnterAsync(string, CancellationToken)"/>
    public ValueTask<IDisposable?> EnterAsync(HttpContext http) => EnterAsync(CallerOf(http), http.RequestAborted);

    public void Dispose()
    {
        Limiter.Dispose();
        _perCaller.Dispose();
    }

    private sealed class Turn(RateLimitLease node, RateLimitLease own) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
                return;
            node.Dispose();
            own.Dispose();
        }
    }
}

/// <summary>Takes a turn of <see cref="UploadGate"/> before the handler reads the body, and holds it until the handler
/// is done; refuses with 429 when the caller's share or the node's queue is full.</summary>
internal sealed class UploadLimitFilter(UploadGate gate) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        using var turn = await gate.EnterAsync(http);
        if (turn is null)
        {
            http.Response.Headers.RetryAfter = "1";
            return Problems.Of(ProblemKind.RateLimited, "Too many uploads at once for this caller or on this server; retry after 1 s.", "files");
        }
        return await next(context);
    }
}

public static class UploadLimitExtensions
{
    /// <summary>The upload concurrency limit, bound from the <c>Uploads</c> section.</summary>
    public static IServiceCollection AddUploadLimits(this IServiceCollection services)
    {
        services.AddOptions<UploadOptions>().BindConfiguration(UploadOptions.Section)
            .Validate(o => o.MaxConcurrent > 0 && o.MaxQueued >= 0 && o.MaxConcurrentPerCaller > 0,
                "Uploads:MaxConcurrent and Uploads:MaxConcurrentPerCaller must be positive and Uploads:MaxQueued not negative.")
            .ValidateOnStart();
        services.AddSingleton<UploadGate>();
        return services;
    }

    /// <summary>Puts the endpoint's body read under the upload limit.</summary>
    public static TBuilder LimitUploads<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter<TBuilder, UploadLimitFilter>();
}
