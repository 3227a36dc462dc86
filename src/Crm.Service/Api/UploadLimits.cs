using System.Threading.RateLimiting;
using Crm.Connectors.Abstractions;
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
}

/// <summary>The node's one concurrency limiter of uploads.</summary>
internal sealed class UploadGate(IOptions<UploadOptions> options) : IDisposable
{
    public ConcurrencyLimiter Limiter { get; } = new(new ConcurrencyLimiterOptions
    {
        PermitLimit = options.Value.MaxConcurrent,
        QueueLimit = options.Value.MaxQueued,
        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
    });

    public void Dispose() => Limiter.Dispose();
}

/// <summary>Takes a turn of <see cref="UploadGate"/> before the handler reads the body, and holds it until the handler
/// is done; refuses with 429 when the queue is full.</summary>
internal sealed class UploadLimitFilter(UploadGate gate) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        using var lease = await gate.Limiter.AcquireAsync(1, http.RequestAborted);
        if (!lease.IsAcquired)
        {
            http.Response.Headers.RetryAfter = "1";
            return Problems.Of(ProblemKind.RateLimited, "Too many uploads at once on this server; retry after 1 s.", "files");
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
            .Validate(o => o.MaxConcurrent > 0 && o.MaxQueued >= 0, "Uploads:MaxConcurrent must be positive and Uploads:MaxQueued not negative.")
            .ValidateOnStart();
        services.AddSingleton<UploadGate>();
        return services;
    }

    /// <summary>Puts the endpoint's body read under the upload limit.</summary>
    public static TBuilder LimitUploads<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter<TBuilder, UploadLimitFilter>();
}
