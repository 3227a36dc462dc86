using Crm.Service.KnowledgeBase;
using Crm.Service.Infrastructure.Changes;
using Microsoft.Extensions.Options;
using Crm.Connectors.Abstractions;
using System.Text.Json;
using System.Text.Json.Serialization;
using Crm.Connectors.Api.Http;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Store;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Crm.Service.Hosting;

public static class HttpExtensions
{
    /// <summary>JSON conventions, problem details for every error, health checks, forwarded headers and the limits
    /// in front of authentication.</summary>
    public static IHostApplicationBuilder AddCrmHttp(this IHostApplicationBuilder builder)
    {
        builder.AddCrmEdgeLimits();
        builder.Services.Configure<JsonOptions>(options =>
        {
            // Names only: a number would bind any value of the enum's underlying type, including undefined ones.
            options.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false));
            options.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
        });
        builder.Services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);
        builder.Services.AddProblemDetails(options => options.CustomizeProblemDetails = ProblemTypes.Conform);
        builder.Services.AddExceptionHandler<ProblemExceptionHandler>();
        builder.Services.AddHealthChecks()
            .AddCheck<StoreHealthCheck>("store", tags: ["ready"])
            .AddCheck<SiloHealthCheck>("silo", tags: ["ready"])
            .AddCheck<ChangeFeedHealthCheck>("change-feed", tags: ["ready"])
            .AddCheck<IndexRebuildHealthCheck>("index-rebuilds", tags: ["ready"]);
        return builder;
    }

    public static WebApplication UseCrmHttp(this WebApplication app)
    {
        app.UseCrmForwardedHeaders();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        // Before routing and authentication: the per-address and in-flight limits cost a refused request nothing more.
        app.UseCrmEdgeLimits();
        app.UseRouting();
        app.UseAuthentication();
        // After authentication, so the agent API's policy can key on the API key rather than on the address.
        app.UseRateLimiter();
        app.UseAuthorization();
        return app;
    }

    public static IEndpointRouteBuilder MapCrmHealthChecks(this IEndpointRouteBuilder endpoints)
    {
        // Live: the process answers. Ready: the store is migrated and the silo serves grain calls.
        endpoints.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
        endpoints.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") });
        return endpoints;
    }

    private sealed class StoreHealthCheck(StoreInitializer store) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(store.IsInitialized ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("The store is not migrated yet."));
    }

    private sealed class SiloHealthCheck(IGrainFactory grains) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                // A real grain call that reads the store: proves the silo, the scheduler and the database answer.
                await grains.GetGrain<IChannelAccountGrain>("health-probe").GetAsync().WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
                return HealthCheckResult.Healthy();
            }
            catch (Exception ex)
            {
                return HealthCheckResult.Unhealthy("The silo did not answer a grain call.", ex);
            }
        }
    }

    /// <summary>Degraded, not unhealthy: a stuck consumer (an indexer whose engine is down) must not take the node out
    /// of service, but the operator must see it before its held-back changes fill the disk.</summary>
    private sealed class ChangeFeedHealthCheck(ChangeFeedStatus status, IOptions<ChangeFeedOptions> options, TimeProvider time) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var since = time.GetUtcNow() - options.Value.DegradedAfter;
            var failing = status.Consumers.Where(c => c.FailingSince <= since).ToList();
            return Task.FromResult(failing.Count == 0
                ? HealthCheckResult.Healthy()
                : HealthCheckResult.Degraded(string.Join("; ", failing.Select(c => $"change consumer '{c.Name}' has failed {c.Failures} times since {c.FailingSince:O}: {c.LastError}"))));
        }
    }

    /// <summary>Degraded while a search index is owed a rebuild whose last attempt failed (review LG6): the node keeps
    /// serving from the old index, which may miss or keep what it should not, and the retries read the whole store.</summary>
    private sealed class IndexRebuildHealthCheck(IServiceProvider services) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            IndexRebuildService?[] rebuilds = [services.GetService<ReindexService>(), services.GetService<FullTextSearch.RecordReindexService>()];
            var degraded = rebuilds.Select(r => r?.Degradation).OfType<string>().ToList();
            return Task.FromResult(degraded.Count == 0 ? HealthCheckResult.Healthy() : HealthCheckResult.Degraded(string.Join("; ", degraded)));
        }
    }

    /// <summary>Domain refusals and bad request bodies become problem details naming the field; the rest are 500s.</summary>
    private sealed class ProblemExceptionHandler(IProblemDetailsService problems) : IExceptionHandler
    {
        public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken cancellationToken)
        {
            var details = exception switch
            {
                DomainException domain => Problems.Details(Problems.KindOf(domain.Kind), domain.Message, domain.Field),
                BadHttpRequestException { InnerException: JsonException json } => Problems.Details(ProblemKind.MalformedBody,
                    $"The body is not valid JSON for this request{(json.Path is null ? "" : $" at '{json.Path}'")}.", Problems.FieldOf(json.Path) ?? "body"),
                BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } tooLarge => Problems.Details(ProblemKind.TooLarge, tooLarge.Message, "body"),
                BadHttpRequestException bad => Problems.Details(ProblemKind.MalformedBody, bad.Message),
                _ => null,
            };
            if (details is null)
                return false;
            http.Response.StatusCode = details.Status!.Value;
            return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = details, Exception = exception });
        }
    }
}
