using System.Threading.RateLimiting;
using Crm.Connectors.Api.Http;
using Crm.Service.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.Api;

public static class ApiChannelExtensions
{
    /// <summary>The messaging API channel: options, the per-channel rate limit and the webhook sender for the outbox.</summary>
    public static IHostApplicationBuilder AddApiChannel(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ApiChannelOptions>().BindConfiguration(ApiChannelOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddHttpClient(WebhookSender.HttpClientName, (provider, client) =>
        {
            client.Timeout = provider.GetRequiredService<IOptions<ApiChannelOptions>>().Value.WebhookTimeout;
            client.DefaultRequestHeaders.UserAgent.ParseAdd("Crm.Service-Webhook/1.0");
        }).ConfigurePrimaryHttpMessageHandler(provider =>
        {
            var allowPrivateNetworks = provider.GetRequiredService<IOptions<ApiChannelOptions>>().Value.AllowPrivateNetworkWebhooks;
            return new SocketsHttpHandler
            {
                // A redirect would be a second request to an address nobody configured; the sender reports 3xx instead.
                AllowAutoRedirect = false,
                // A proxy would connect on our behalf to whatever the host resolves to, past the address check.
                UseProxy = false,
                // Unread rest of a large answer closes the connection rather than being read to reuse it.
                MaxResponseDrainSize = 0,
                ConnectCallback = (context, cancellationToken) => WebhookConnector.ConnectAsync(context.DnsEndPoint, allowPrivateNetworks, cancellationToken),
            };
        });
        builder.Services.AddSingleton<IOutboundSender, WebhookSender>();
        builder.Services.AddSingleton<ChannelDirectory>();
        builder.Services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.AddPolicy(ApiChannelEndpoints.RateLimitPolicy, http =>
            {
                var options = http.RequestServices.GetRequiredService<IOptions<ApiChannelOptions>>().Value;
                var channel = http.Request.RouteValues["channelId"] as string ?? "";
                return RateLimitPartition.GetTokenBucketLimiter(channel, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = options.Burst,
                    TokensPerPeriod = options.RequestsPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
        });
        return builder;
    }
}
