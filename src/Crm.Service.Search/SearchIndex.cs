namespace Crm.Service.Search;

/// <summary>The languages articles are written in; Chinese variants share one analysis (CJK bigrams).</summary>
public static class SearchLanguages
{
    public const string English = "en";
    public const string SimplifiedChinese = "zh-CN";
    public const string TraditionalChinese = "zh-TW";

    public static readonly IReadOnlyList<string> All = [SimplifiedChinese, TraditionalChinese, English];

    public static bool IsValid(string? language) => language is English or SimplifiedChinese or TraditionalChinese;

    /// <summary>The analysis family of a language: "en" (English, stemmed) or "zh" (CJK bigrams).</summary>
    public static string Family(string language) => language == English ? "en" : "zh";

    /// <summary>The analysis a text without a declared language gets (tickets, messages, customers): Chinese when it
    /// holds at least as many Han characters as Latin words (about five letters each), English otherwise. Queries
    /// search all four fields either way; this picks the fields the text is indexed in and its snippet's analysis.</summary>
    public static string Detect(string text)
    {
        int letters = 0, han = 0;
        foreach (var c in text)
        {
            if (c is >= '\u3400' and <= '\u9fff' or >= '\uf900' and <= '\ufaff')
                han++;
            else if (char.IsLetter(c))
                letters++;
        }
        return han > 0 && han * 5 >= letters ? SimplifiedChinese : English;
    }
}

/// <summary>What a document is. Articles live in the knowledge-base index; tickets, messages and customers in the
/// console's own index (docs/search.md), so a help-center search can never reach a ticket.</summary>
public static class SearchKinds
{
    public const string Article = "article";
    public const string Ticket = "ticket";
    public const string Message = "message";
    public const string Customer = "customer";

    public static readonly IReadOnlyList<string> Records = [Ticket, Message, Customer];
}

/// <summary>One searchable document: a knowledge-base article in one language. <see cref="Body"/> is plain text
/// (Markdown already rendered and stripped), so snippets never show markup.</summary>
public sealed record SearchDocument(
    string Id,
    string Language,
    string Title,
    string Body,
    string Visibility,
    string Status,
    string? Slug = null,
    IReadOnlyList<string>? Categories = null,
    IReadOnlyList<string>? Tags = null,
    DateTimeOffset UpdatedAt = default)
{
    /// <summary>The article's category and its ancestors: a filter on a parent category finds articles below it.</summary>
    public IReadOnlyList<string> Categories { get; init; } = Categories ?? [];
    public IReadOnlyList<string> Tags { get; init; } = Tags ?? [];

    /// <summary>One of <see cref="SearchKinds"/>.</summary>
    public string Kind { get; init; } = SearchKinds.Article;

    /// <summary>The team whose restriction applies (a ticket's team, also on its messages), or null.</summary>
    public string? Team { get; init; }
}

/// <summary>A search: free text plus filters. An empty filter list means "any".</summary>
public sealed record SearchQuery(string Text)
{
    /// <summary>The deepest page a search reaches (Skip at most this): ranking is for the first pages, and Elasticsearch
    /// refuses from + size above 10,000 anyway.</summary>
    public const int MaxSkip = 1000;

    public IReadOnlyList<string> Languages { get; init; } = [];
    public IReadOnlyList<string> Visibilities { get; init; } = [];
    public IReadOnlyList<string> Statuses { get; init; } = [];
    public string? Category { get; init; }
    /// <summary>Only these kinds (<see cref="SearchKinds"/>); empty: any.</summary>
    public IReadOnlyList<string> Kinds { get; init; } = [];
    /// <summary>Documents of these teams are left out (restricted teams the person is not in).</summary>
    public IReadOnlyList<string> ExcludedTeams { get; init; } = [];
    /// <summary>Documents with these ids are left out too (records whose indexed team is stale: a ticket moved into a
    /// restricted team that the feed has not re-indexed yet), so the total counts only what the person may see.</summary>
    public IReadOnlyList<string> ExcludedIds { get; init; } = [];
    public int Skip { get; init; }
    public int Take { get; init; } = 10;
}

/// <summary>One hit. <see cref="Snippet"/> is HTML: the text is encoded and the matched words are in &lt;mark&gt;.</summary>
public sealed record SearchHit(string Id, double Score, string Title, string Snippet, string Language, string Visibility, string Status, string? Slug)
{
    public string Kind { get; init; } = SearchKinds.Article;
}

public sealed record SearchResults(long Total, IReadOnlyList<SearchHit> Hits);

/// <summary>
/// The full-text index of knowledge-base articles (docs/search.md). Writes are idempotent (an upsert replaces the
/// document with the same id; deleting a missing id is no error), so the change feed may hand a change twice. When
/// a write returns, the change is durable and visible to the next search.
/// </summary>
public interface ISearchIndex
{
    /// <summary>"lucene" or "elasticsearch", for the admin view and logs.</summary>
    string Engine { get; }

    /// <summary>Which index this is ("lucene:/var/lib/crm/search", "elasticsearch:es1:9200/crm-kb"): the change
    /// feed keeps one cursor per identity, so an index that was not written for a while (another engine or folder
    /// was configured) is caught up or rebuilt instead of trusted.</summary>
    string Identity => Engine;

    Task UpsertAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default);

    Task DeleteAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default);

    Task<SearchResults> SearchAsync(SearchQuery query, CancellationToken cancellationToken = default);

    Task<long> CountAsync(CancellationToken cancellationToken = default);

    /// <summary>The team each of these documents was indexed with ("" for none), for the ids the index holds with a
    /// recorded team; null when the engine cannot tell. The records indexer re-indexes a ticket's messages only when
    /// its indexed team differs from the store's (review KW6); a missing entry means "re-index to be safe".</summary>
    Task<IReadOnlyDictionary<string, string>?> IndexedTeamsAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyDictionary<string, string>?>(null);

    /// <summary>The change-feed position this index says it reflects (its version marker), or null when it holds none
    /// (an index written before markers, or an engine without them). Kept inside the index itself (Lucene commit
    /// data, Elasticsearch index <c>_meta</c>), so a restored older copy carries its older marker: compared with the
    /// store's record it gives the copy away.</summary>
    Task<long?> AppliedSequenceAsync(CancellationToken cancellationToken = default) => Task.FromResult<long?>(null);

    /// <summary>Records that the index now reflects the change feed up to <paramref name="sequence"/> (never lowers it).</summary>
    Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <summary>Called when the change feed is caught up (a burst of writes is over): the engine may compact the index
    /// for reading in the background (Lucene merges the segments the burst left behind; each search pays per segment).</summary>
    Task OptimizeAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <summary>Starts a rebuild into a new, empty index. Searches and writes go to the current index until
    /// <see cref="IIndexRebuild.CompleteAsync"/> swaps the new one in; disposing an uncompleted rebuild throws it away.</summary>
    Task<IIndexRebuild> BeginRebuildAsync(CancellationToken cancellationToken = default);
}

/// <summary>A rebuild in progress (see <see cref="ISearchIndex.BeginRebuildAsync"/>).</summary>
public interface IIndexRebuild : IAsyncDisposable
{
    Task AddAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default);

    /// <summary>The change-feed position the new index reflects once swapped in (the rebuild's starting point).</summary>
    Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <summary>Prepares the filled index for reading (Lucene merges it to one segment), while it is still private:
    /// the caller does this before holding the feed's consumer, so publishes never wait for it.</summary>
    Task OptimizeAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <summary>Makes the new index the one searched and written, atomically, and drops the old one.</summary>
    Task CompleteAsync(CancellationToken cancellationToken = default);
}

/// <summary>The search engine could not be reached or refused a request: the message says which and why.</summary>
public sealed class SearchUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
