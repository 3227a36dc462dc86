using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.DependencyInjection;
using Crm.Service.Infrastructure.Store;
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
    public TimeSpan PruneInterval { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>Deletes read notices older than <see cref="NoticeOptions.KeepReadFor"/>, a minute after start and every
/// <see cref="NoticeOptions.PruneInterval"/>.</summary>
public sealed class NoticePruning(NoticeStore notices, IOptions<NoticeOptions> options, TimeProvider time, ILogger<NoticePruning> logger)
    : PeriodicPruning(time, logger)
{
    protected override TimeSpan Interval => options.Value.PruneInterval;

    protected override string What => "read notices";

    protected override Task<int> PruneOnceAsync(CancellationToken cancellationToken) =>
        notices.PruneReadAsync(options.Value.KeepReadFor, cancellationToken);
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
