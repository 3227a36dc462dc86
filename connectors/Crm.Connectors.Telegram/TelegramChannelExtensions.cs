using Crm.Connectors.Abstractions;
using Microsoft.AspNetCore.Builder;
using Crm.Service.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Crm.Connectors.Telegram;

public static class TelegramChannelExtensions
{
    /// <summary>The Telegram channel: options, its settings type (kind "telegram", vouching for Telegram user ids), one
    /// loop per enabled bot (webhook registration or long polling), the update mapping and the sender for the outbox.
    /// Map the webhook endpoint with <see cref="TelegramWebhookEndpoints.MapTelegramChannel"/>.</summary>
    public static IHostApplicationBuilder AddTelegramChannel(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<TelegramChannelOptions>().BindConfiguration(TelegramChannelOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddChannelSettings<TelegramChannelSettings>(ChannelKind.Telegram, IdentityKind.Telegram);
        builder.Services.AddChannelSettingsCheck<TelegramSettingsCheck>();
        // The bot clients set their own timeout (the long poll is longer than HttpClient's default 100 s allows for).
        // No request logging: the bot token is in every request's path, and .NET redacts only the query string.
        builder.Services.AddHttpClient(TelegramBots.HttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            // A Bot API that cannot be reached fails the connect well within the outbox's send timeout: a retry, where a
            // send cut short after it connected is "not confirmed" (review FX1).
            .ConfigurePrimaryHttpMessageHandler((handler, _) =>
            {
                if (handler is SocketsHttpHandler sockets)
                    sockets.ConnectTimeout = TimeSpan.FromSeconds(15);
            })
            .RemoveAllLoggers();
        builder.Services.AddConnectorLeases();
        builder.Services.AddRateLimiter(limiter => limiter.AddPolicy(TelegramWebhookEndpoints.RateLimitPolicy, TelegramWebhookEndpoints.Partition));
        builder.Services.AddSingleton<TelegramBots>();
        builder.Services.AddSingleton<TelegramIngest>();
        builder.Services.AddSingleton<IOutboundSender, TelegramSender>();
        builder.Services.AddSingleton<TelegramBotSupervisor>();
        builder.Services.AddHostedService(provider => provider.GetRequiredService<TelegramBotSupervisor>());
        return builder;
    }
}
