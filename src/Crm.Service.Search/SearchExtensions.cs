using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Search;

public static class SearchExtensions
{
    /// <summary>Registers <see cref="ISearchIndex"/>: the engine named by Search:Engine. <paramref name="defaultDirectory"/>
    /// is where Lucene keeps its index unless Search:LuceneDirectory says otherwise.</summary>
    public static IServiceCollection AddCrmSearch(this IServiceCollection services, IConfiguration configuration, Func<IServiceProvider, string> defaultDirectory)
    {
        services.AddOptions<SearchOptions>().Bind(configuration.GetSection(SearchOptions.Section)).ValidateDataAnnotations()
            .Validate(o => o.Engine is SearchOptions.LuceneEngine or SearchOptions.ElasticsearchEngine, "Search:Engine must be 'lucene' or 'elasticsearch'.")
            .Validate(o => o.Engine != SearchOptions.ElasticsearchEngine || o.Elasticsearch.Url is { IsAbsoluteUri: true },
                "Search:Elasticsearch:Url is required (e.g. http://localhost:9200) when Search:Engine is 'elasticsearch'.")
            .ValidateOnStart();
        services.AddHttpClient(ElasticsearchIndex.HttpClientName);
        services.AddSingleton<ISearchIndex>(provider =>
        {
            var options = provider.GetRequiredService<IOptions<SearchOptions>>().Value;
            if (options.Engine == SearchOptions.ElasticsearchEngine)
            {
                var http = provider.GetRequiredService<IHttpClientFactory>().CreateClient(ElasticsearchIndex.HttpClientName);
                return new ElasticsearchIndex(http, options.Elasticsearch, provider.GetRequiredService<ILogger<ElasticsearchIndex>>());
            }
            var directory = string.IsNullOrWhiteSpace(options.LuceneDirectory) ? defaultDirectory(provider) : options.LuceneDirectory;
            return new LuceneSearchIndex(directory, provider.GetRequiredService<ILogger<LuceneSearchIndex>>());
        });
        return services;
    }
}
