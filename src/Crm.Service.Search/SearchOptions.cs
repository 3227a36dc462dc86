using System.ComponentModel.DataAnnotations;

namespace Crm.Service.Search;

/// <summary>Settings of the search engine (section "Search").</summary>
public sealed class SearchOptions
{
    public const string Section = "Search";
    public const string LuceneEngine = "lucene";
    public const string ElasticsearchEngine = "elasticsearch";

    /// <summary>"lucene" (embedded, the default) or "elasticsearch".</summary>
    [Required]
    public string Engine { get; set; } = LuceneEngine;

    /// <summary>Where the Lucene index lives; when empty, "{Store:DataDirectory}/search".</summary>
    public string? LuceneDirectory { get; set; }

    /// <summary>Where the Lucene index of tickets, messages and customers lives; when empty, "{Store:DataDirectory}/search-records".
    /// Must not be LuceneDirectory (each is a root of index generations).</summary>
    public string? RecordsLuceneDirectory { get; set; }

    public ElasticsearchOptions Elasticsearch { get; set; } = new();
}

public sealed class ElasticsearchOptions
{
    /// <summary>Base address, e.g. http://localhost:9200.</summary>
    public Uri? Url { get; set; }

    /// <summary>The alias searched and written; each build is a concrete index "{Alias}-{timestamp}" behind it.</summary>
    [RegularExpression("^[a-z0-9][a-z0-9_-]{0,100}$")]
    public string Alias { get; set; } = "crm-kb";

    /// <summary>The alias of the console's index of tickets, messages and customers.</summary>
    [RegularExpression("^[a-z0-9][a-z0-9_-]{0,100}$")]
    public string RecordsAlias { get; set; } = "crm-records";

    /// <summary>Sent as "Authorization: ApiKey …" when set.</summary>
    public string? ApiKey { get; set; }

    public string? Username { get; set; }
    public string? Password { get; set; }

    /// <summary>The bulk API's refresh parameter: "wait_for" (a write returns once searchable), "true" or "false".</summary>
    [RegularExpression("^(wait_for|true|false)$")]
    public string Refresh { get; set; } = "wait_for";

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most bytes in one "_bulk" request; larger batches are split. Elasticsearch refuses bodies above its
    /// http.max_content_length (100 MB by default) with 413, which would stop indexing on the same batch for good.</summary>
    [Range(64 * 1024, 100 * 1024 * 1024)]
    public int MaxBulkBytes { get; set; } = 10 * 1024 * 1024;
}
