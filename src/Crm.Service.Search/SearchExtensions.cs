using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Crm.Service.Search;

public static class SearchExtensions
{
    /// <summary>The service key of the console's index of tickets, messages and customers (the unkeyed
    /// <see cref="ISearchIndex"/> is the knowledge base's).</summary>
    public const string RecordsIndex = "records";

    /// <summary>Registers <see cref="ISearchIndex"/>: the engine named by Search:Engine. <paramref name="defaultDirectory"/>
    /// is where Lucene keeps its index unless Search:LuceneDirectory says otherwise; <paramref name="defaultRecordsDirectory"/>
    /// the same for the records index (keyed <see cref="RecordsIndex"/>, Search:RecordsLuceneDirectory).</summary>
    public static IServiceCollection AddCrmSearch(this IServiceCollection services, IConfiguration configuration, Func<IServiceProvider, string> defaultDirectory,
        Func<IServiceProvider, string> defaultRecordsDirectory)
    {
        services.AddOptions<SearchOptions>().Bind(configuration.GetSection(SearchOptions.Section)).ValidateDataAnnotations()
            .Validate(o => o.Engine is SearchOptions.LuceneEngine or SearchOptions.ElasticsearchEngine, "Search:Engine must be 'lucene' or 'elasticsearch'.")
            .Validate(o => o.Engine != SearchOptions.ElasticsearchEngine || o.Elasticsearch.Url is { IsAbsoluteUri: true },
                "Search:Elasticsearch:Url is required (e.g. http://localhost:9200) when Search:Engine is 'elasticsearch'.")
            .Validate(o => o.Elasticsearch.RecordsAlias != o.Elasticsearch.Alias
                    && !o.Elasticsearch.RecordsAlias.StartsWith(o.Elasticsearch.Alias + "-", StringComparison.Ordinal)
                    && !o.Elasticsearch.Alias.StartsWith(o.Elasticsearch.RecordsAlias + "-", StringComparison.Ordinal),
                "Search:Elasticsearch:Alias and RecordsAlias must differ and neither may start with the other followed by '-' (their index templates would overlap).")
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
        services.AddKeyedSingleton<ISearchIndex>(RecordsIndex, (provider, _) =>
        {
            var options = provider.GetRequiredService<IOptions<SearchOptions>>().Value;
            if (options.Engine == SearchOptions.ElasticsearchEngine)
            {
                var http = provider.GetRequiredService<IHttpClientFactory>().CreateClient(ElasticsearchIndex.HttpClientName);
                var records = new ElasticsearchOptions
                {
                    Url = options.Elasticsearch.Url, Alias = options.Elasticsearch.RecordsAlias, ApiKey = options.Elasticsearch.ApiKey,
                    Username = options.Elasticsearch.Username, Password = options.Elasticsearch.Password, Refresh = options.Elasticsearch.Refresh,
                    Timeout = options.Elasticsearch.Timeout, MaxBulkBytes = options.Elasticsearch.MaxBulkBytes,
                };
                return new ElasticsearchIndex(http, records, provider.GetRequiredService<ILogger<ElasticsearchIndex>>());
            }
            var directory = string.IsNullOrWhiteSpace(options.RecordsLuceneDirectory) ? defaultRecordsDirectory(provider) : options.RecordsLuceneDirectory;
            return new LuceneSearchIndex(directory, provider.GetRequiredService<ILogger<LuceneSearchIndex>>());
        });
        return services;
    }
}
