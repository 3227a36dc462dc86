using Crm.Connectors.Abstractions;
using Crm.Connectors.Api.Http;
using Crm.Service.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Crm.Connectors.Api;

public static class ApiChannelExtensions
{
    /// <summary>The messaging API channel: options, its settings type, the per-channel rate limit and the webhook sender for the outbox.</summary>
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
        builder.Services.AddSingleton<ApiChannelRateLimiter>();
        builder.Services.AddChannelSettings<ApiChannelSettings>(ChannelKind.Api, IdentityKind.External);
        return builder;
    }
}
