using System.ComponentModel.DataAnnotations;
using System.Threading.RateLimiting;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.KnowledgeBase;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Search;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Crm.Service.KnowledgeBase;

/// <summary>Settings of the knowledge base and the public help center (section "KnowledgeBase").</summary>
public sealed class KnowledgeBaseOptions
{
    public const string Section = "KnowledgeBase";

    /// <summary>Help-center searches one client address may make per second (token bucket), and its burst.</summary>
    [Range(1, 10_000)]
    public int HelpSearchesPerSecond { get; set; } = 2;

    [Range(1, 100_000)]
    public int HelpSearchBurst { get; set; } = 20;

    /// <summary>Attachment downloads (/kb/files) one client address may make per second, and its burst: pages show
    /// many images, and offices share an address.</summary>
    [Range(1, 100_000)]
    public int FileRequestsPerSecond { get; set; } = 50;

    [Range(1, 1_000_000)]
    public int FileBurst { get; set; } = 300;

    /// <summary>The largest file an editor may attach to an article (bytes).</summary>
    [Range(1024, 100L * 1024 * 1024)]
    public long MaxAttachmentBytes { get; set; } = KnowledgeBaseStore.DefaultMaxAttachmentBytes;

    /// <summary>How long browsers and proxies may reuse a help-center page (Cache-Control max-age).</summary>
    public TimeSpan HelpCacheDuration { get; set; } = TimeSpan.FromMinutes(1);
}

public static class KnowledgeBaseExtensions
{
    public const string HelpSearchRateLimit = "help-search";
    public const string FilesRateLimit = "kb-files";
    public const string EditorPolicy = "console-kb";

    /// <summary>Articles in the store, the search engine (Search:Engine), the indexer on the change feed, reindexing,
    /// the API's and pages' policies and the help center's rate limit.</summary>
    public static IHostApplicationBuilder AddKnowledgeBase(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<KnowledgeBaseOptions>().BindConfiguration(KnowledgeBaseOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        string Data(IServiceProvider provider) => Path.GetFullPath(provider.GetRequiredService<IOptions<Crm.Service.Infrastructure.Store.StoreOptions>>().Value.DataDirectory);
        services.AddCrmSearch(builder.Configuration, provider => Path.Combine(Data(provider), "search"), provider => Path.Combine(Data(provider), "search-records"));
        FullTextSearch.RecordSearchExtensions.AddRecordSearch(builder);
        services.AddSingleton<KnowledgeBaseStore>();
        services.AddSingleton<ArticleIndexer>();
        // The same instance as the singleton: ReindexService releases it once its start-up check is done.
        services.AddSingleton<Crm.Service.Grains.Storage.IChangeConsumer>(provider => provider.GetRequiredService<ArticleIndexer>());
        services.AddSingleton<ReindexService>();
        // A shared index (Elasticsearch) is rebuilt by one node at a time, under a lease (review LF4).
        Crm.Connectors.Abstractions.ConnectorLeaseExtensions.AddConnectorLeases(services);
        services.AddHostedService(provider => provider.GetRequiredService<ReindexService>());
        // Replaces the web chat's default (no suggestions).
        services.AddSingleton<Crm.Connectors.Abstractions.IArticleSuggestions, HelpCenterSuggestions>();
        services.AddAuthorizationBuilder()
            .AddPolicy(KnowledgeBaseApi.ReadPolicy, policy => policy.RequireRole(Roles.Agent, Roles.Admin, Roles.KnowledgeEditor))
            .AddPolicy(KnowledgeBaseApi.WritePolicy, policy => policy.RequireRole(Roles.Admin, Roles.KnowledgeEditor))
            .AddPolicy(EditorPolicy, policy => policy.AddAuthenticationSchemes(IdentityConstants.ApplicationScheme)
                .RequireRole(ConsoleRoles.KnowledgeEditor, ConsoleRoles.Admin));
        services.Configure<RazorPagesOptions>(pages =>
        {
            pages.Conventions.AllowAnonymousToFolder("/Help");
            pages.Conventions.AuthorizeFolder("/Kb", EditorPolicy);
        });
        services.AddRateLimiter(limiter => limiter.AddPolicy(HelpSearchRateLimit, http =>
        {
            var settings = http.RequestServices.GetRequiredService<IOptions<KnowledgeBaseOptions>>().Value;
            return RateLimitPartition.GetTokenBucketLimiter(http.Connection.RemoteIpAddress?.ToString() ?? "unknown", _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = settings.HelpSearchBurst,
                TokensPerPeriod = settings.HelpSearchesPerSecond,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
            });
        }));
        services.AddRateLimiter(limiter => limiter.AddPolicy(FilesRateLimit, http =>
        {
            var settings = http.RequestServices.GetRequiredService<IOptions<KnowledgeBaseOptions>>().Value;
            return RateLimitPartition.GetTokenBucketLimiter(http.Connection.RemoteIpAddress?.ToString() ?? "unknown", _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = settings.FileBurst,
                TokensPerPeriod = settings.FileRequestsPerSecond,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
            });
        }));
        return builder;
    }

    /// <summary><c>--reindex</c>: rebuilds the search index from the store, printing progress, and exits instead of serving.
    /// Run it while the service is stopped (Lucene allows one writer; with Elasticsearch, on every node: the command takes
    /// no lease, review LH6); on a running service use POST /api/v1/admin/kb/reindex.</summary>
    public static async Task<bool> RunKnowledgeBaseCommandAsync(this WebApplication app, string[] args)
    {
        if (!args.Contains("--reindex"))
            return false;
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Crm.Service.Reindex");
        var reindex = app.Services.GetRequiredService<ReindexService>();
        var last = -1;
        var result = await reindex.RunAsync(new Progress<ReindexProgress>(p =>
        {
            if (p.Done == p.Total || p.Done - last >= 1000)
            {
                last = p.Done;
                Console.WriteLine($"reindex: {p.Done}/{p.Total} articles");
            }
        }), CancellationToken.None);
        Console.WriteLine($"reindex: {result.State}, {result.Done} articles");
        if (result.State != "completed")
        {
            logger.LogError("Reindex failed: {Error}", result.Error);
            Environment.ExitCode = 1;
        }
        var records = await app.Services.GetRequiredService<FullTextSearch.RecordReindexService>().RunAsync(null, CancellationToken.None);
        Console.WriteLine($"reindex: {records.State}, {records.Done} tickets, messages and customers");
        if (records.State != "completed")
        {
            logger.LogError("Reindex of tickets, messages and customers failed: {Error}", records.Error);
            Environment.ExitCode = 1;
        }
        return true;
    }
}
