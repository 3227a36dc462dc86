using Crm.Service.Grains;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Blobs;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.Channels;
using Crm.Service.Infrastructure.Html;
using Crm.Service.Infrastructure.Mailboxes;
using Crm.Service.Infrastructure.Outbox;
using Crm.Service.Infrastructure.Reminders;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Crm.Service.Infrastructure;

public static class InfrastructureExtensions
{
    /// <summary>The embedded store (SQLite, blobs), the domain's options and the outbox. Options are validated on start,
    /// so a bad setting stops start-up with a message naming it.</summary>
    public static IServiceCollection AddCrmInfrastructure(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<StoreOptions>().BindConfiguration(StoreOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<TicketOptions>().BindConfiguration(TicketOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<IngestOptions>().BindConfiguration(IngestOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<OutboxOptions>().BindConfiguration(OutboxOptions.Section).ValidateDataAnnotations().ValidateOnStart();

        services.AddPooledDbContextFactory<CrmDbContext>((provider, options) => options
            .UseSqlite(provider.GetRequiredService<IOptions<StoreOptions>>().Value.ConnectionString)
            .AddInterceptors([new SqlitePragmas(), .. provider.GetServices<ICrmStoreInterceptor>()]));
        services.AddSingleton<StoreInitializer>();
        services.AddHostedService(provider => provider.GetRequiredService<StoreInitializer>());
        services.AddSingleton<GroupCommitWriter>();
        services.AddSingleton<ICrmStore, SqliteCrmStore>();
        services.AddSingleton<ITicketNumberAllocator, TicketNumberAllocator>();
        services.AddSingleton<IConnectorLeaseStore, Leases.SqliteConnectorLeaseStore>();
        services.AddSingleton<IBlobStore, FileBlobStore>();
        services.AddSingleton<IBlobHolds, Blobs.SqliteBlobHolds>();
        services.AddHostedService<Blobs.BlobSweepService>();
        services.AddOptions<RequestKeyOptions>().BindConfiguration(RequestKeyOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddHostedService<RequestKeyPruning>();
        services.AddSingleton<IHtmlSanitizer, HtmlSanitizerAdapter>();

        services.AddChannelAccounts();
        services.AddSingleton<SqliteMailboxStore>();
        services.AddSingleton<Crm.Connectors.Abstractions.IConversationLookup>(provider => provider.GetRequiredService<SqliteMailboxStore>());
        services.AddSingleton<Crm.Connectors.Abstractions.IMailboxStateStore>(provider => provider.GetRequiredService<SqliteMailboxStore>());
        services.AddSingleton<Crm.Connectors.Abstractions.IMailboxAdminStore>(provider => provider.GetRequiredService<SqliteMailboxStore>());
        services.AddSingleton<Crm.Connectors.Abstractions.IAutomaticMailStore>(provider => provider.GetRequiredService<SqliteMailboxStore>());
        services.AddSingleton<Crm.Connectors.Abstractions.IConversationTranscripts, Queries.ConversationTranscripts>();
        services.AddSingleton<Crm.Connectors.Abstractions.IWebChatVisitorStore, WebChat.SqliteWebChatVisitorStore>();

        services.AddSingleton<OutboxDispatcher>();
        services.AddSingleton<IOutboxSignal>(provider => provider.GetRequiredService<OutboxDispatcher>());
        services.AddHostedService(provider => provider.GetRequiredService<OutboxDispatcher>());

        services.AddChangeFeed();
        Routing.RoutingExtensions.AddCrmRouting(services);
        return services;
    }

    /// <summary>Durable reminders in the embedded SQLite file.</summary>
    public static ISiloBuilder UseSqliteReminderService(this ISiloBuilder builder)
    {
        builder.AddReminders();
        builder.Services.AddSingleton<IReminderTable, SqliteReminderTable>();
        // Lifecycle reminders re-tick at TicketOptions.ReminderPeriod; let Orleans accept that period.
        builder.Services.AddOptions<ReminderOptions>().Configure<IOptions<TicketOptions>>((reminders, tickets) =>
        {
            if (tickets.Value.ReminderPeriod < reminders.MinimumReminderPeriod)
                reminders.MinimumReminderPeriod = tickets.Value.ReminderPeriod;
        });
        return builder;
    }
}
