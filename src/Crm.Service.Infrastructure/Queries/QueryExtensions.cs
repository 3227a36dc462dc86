using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Infrastructure.Queries;

public static class QueryExtensions
{
    /// <summary>The read side shared by the REST API and the console. Singletons: they hold nothing but the
    /// context factory, and every call takes its own pooled context.</summary>
    public static IServiceCollection AddCrmQueries(this IServiceCollection services)
    {
        services.AddSingleton<TicketQueries>();
        services.AddSingleton<CustomerQueries>();
        services.AddSingleton<Teams.TeamDirectory>();
        services.AddSingleton<CustomerEvents.CustomerEventStore>();
        services.AddSingleton<TicketLinks.TicketLinkStore>();
        services.AddSingleton<IConsoleSearch, SqlConsoleSearch>();
        services.AddSingleton<Replies.ReplyLibrary>();
        return services;
    }
}
