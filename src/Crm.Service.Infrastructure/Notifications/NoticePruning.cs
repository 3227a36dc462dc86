using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Infrastructure.Notifications;

/// <summary>How long stored notices are kept (section "Notices").</summary>
public sealed class NoticeOptions
{
    public const string Section = "Notices";

    /// <summary>A notice read this long ago is deleted; unread notices are kept until read. A notice's cause never
    /// fires again once its milestone is marked (minutes after the notice at most), so a pruned notice is not stored
    /// again.</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "3650.00:00:00")]
    public TimeSpan KeepReadFor { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often each node prunes (deleting is idempotent, so nodes need not agree who does it).</summary>
    [Range(typeof(TimeSpan), "00:01:00", "1.00:00:00")]
    public TimeSpan PruneEvery { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>Deletes read notices older than <see cref="NoticeOptions.KeepReadFor"/>, at start and every
/// <see cref="NoticeOptions.PruneEvery"/>; a failed pass is logged and tried again at the next.</summary>
public sealed class NoticePruning(NoticeStore notices, IOptions<NoticeOptions> options, TimeProvider time, ILogger<NoticePruning> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var deleted = await notices.PruneReadAsync(options.Value.KeepReadFor, stoppingToken);
                if (deleted > 0)
                    logger.LogInformation("Pruned {Count} read notices", deleted);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Pruning read notices failed; the next pass tries again");
            }
            try
            {
                await Task.Delay(options.Value.PruneEvery, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}

public static class NoticeExtensions
{
    /// <summary>The notice store and the pruning of read notices (options section "Notices").</summary>
    public static IServiceCollection AddNotices(this IServiceCollection services)
    {
        services.AddOptions<NoticeOptions>().BindConfiguration(NoticeOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<NoticeStore>();
        services.AddHostedService<NoticePruning>();
        return services;
    }
}
