using System.Globalization;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Store;
using Microsoft.Extensions.Logging;
using LuceneDirectory = Lucene.Net.Store.Directory;

namespace Crm.Service.Search;

/// <summary>
/// The embedded engine: one Lucene index on disk. Each build is a folder "{root}/{generation}"; the file
/// "{root}/current" names the one in use, so a rebuild writes a new folder and swaps it in by replacing that file
/// (atomic rename). Every write commits (fsync) before it returns: the change feed moves its cursor after that, so
/// a crash never leaves a change acknowledged but missing from the index. Searches use a near-real-time reader.
/// </summary>
public sealed class LuceneSearchIndex : ISearchIndex, IDisposable
{
    private const string CurrentFile = "current";
    private readonly string _root;
    private readonly ILogger<LuceneSearchIndex> _logger;
    // Writes and searches hold it shared (IndexWriter and SearcherManager are thread-safe); a swap holds it alone.
    private readonly ReaderWriterLockSlim _swap = new();
    private Generation _current;

    public LuceneSearchIndex(string root, ILogger<LuceneSearchIndex> logger)
    {
        _root = root;
        _logger = logger;
        System.IO.Directory.CreateDirectory(root);
        var pointer = Path.Combine(root, CurrentFile);
        var name = File.Exists(pointer) ? File.ReadAllText(pointer).Trim() : null;
        if (name is null || !System.IO.Directory.Exists(Path.Combine(root, name)))
        {
            name = NewGenerationName();
            _current = Generation.Open(Path.Combine(root, name), create: true);
            WritePointer(name);
        }
        else
        {
            _current = Generation.Open(Path.Combine(root, name), create: false);
        }
        RemoveStaleGenerations(keep: name);
    }

    public string Engine => SearchOptions.LuceneEngine;

    public string Identity => Engine + ":" + Path.GetFullPath(_root);

    public Task UpsertAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default)
    {
        if (documents.Count == 0)
            return Task.CompletedTask;
        _swap.EnterReadLock();
        try
        {
            foreach (var document in documents)
                _current.Writer.UpdateDocument(new Term("id", document.Id), ToLucene(document));
            _current.CommitAndRefresh();
        }
        finally
        {
            _swap.ExitReadLock();
        }
        return Task.CompletedTask;
    }

    public Task DeleteAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default)
    {
        if (ids.Count == 0)
            return Task.CompletedTask;
        _swap.EnterReadLock();
        try
        {
            _current.Writer.DeleteDocuments([.. ids.Select(id => new Term("id", id))]);
            _current.CommitAndRefresh();
        }
        finally
        {
            _swap.ExitReadLock();
        }
        return Task.CompletedTask;
    }

    public Task<long> CountAsync(CancellationToken cancellationToken = default)
    {
        _swap.EnterReadLock();
        try
        {
            var searcher = _current.Searchers.Acquire();
            try
            {
                return Task.FromResult((long)searcher.IndexReader.NumDocs);
            }
            finally
            {
                _current.Searchers.Release(searcher);
            }
        }
        finally
        {
            _swap.ExitReadLock();
        }
    }

    public Task<SearchResults> SearchAsync(SearchQuery query, CancellationToken cancellationToken = default)
    {
        var matchers = new[] { Analysis.TitleEn, Analysis.BodyEn, Analysis.TitleZh, Analysis.BodyZh }
            .ToDictionary(f => f, f => new TermMatcher(f, query.Text ?? ""));
        if (matchers.Values.All(m => m.IsEmpty))
            return Task.FromResult(new SearchResults(0, []));
        var take = Math.Clamp(query.Take, 1, 100);
        // Bounded so that skip + take cannot overflow (the API refuses more; see SearchQuery.MaxSkip).
        var skip = Math.Clamp(query.Skip, 0, SearchQuery.MaxSkip);

        // Stored fields are copied out under the lock; snippets (which analyse text) are built after it is released,
        // so a slow one never holds up a swap, nor, through the waiting swap, every other search and write.
        var found = new List<(string Id, double Score, string Title, string Body, string Language, string Visibility, string Status, string? Slug)>(take);
        long total;
        _swap.EnterReadLock();
        try
        {
            var searcher = _current.Searchers.Acquire();
            try
            {
                var text = BuildTextQuery(matchers, searcher.IndexReader);
                if (text.Clauses.Count == 0)
                    return Task.FromResult(new SearchResults(0, []));
                Query lucene = FilterFor(query) is { } filter ? new FilteredQuery(text, filter) : text;
                var top = searcher.Search(lucene, skip + take);
                total = top.TotalHits;
                foreach (var scored in top.ScoreDocs.Skip(skip))
                {
                    var doc = searcher.Doc(scored.Doc);
                    found.Add((doc.Get("id"), scored.Score, doc.Get("title"), doc.Get("body") ?? "", doc.Get("language"), doc.Get("visibility"), doc.Get("status"), doc.Get("slug")));
                }
            }
            finally
            {
                _current.Searchers.Release(searcher);
            }
        }
        finally
        {
            _swap.ExitReadLock();
        }
        var hits = found.Select(h =>
        {
            var bodyField = Analysis.BodyField(SearchLanguages.Family(h.Language));
            return new SearchHit(h.Id, h.Score, h.Title, Snippets.Build(h.Body, bodyField, matchers[bodyField].Matches), h.Language, h.Visibility, h.Status, h.Slug);
        }).ToList();
        return Task.FromResult(new SearchResults(total, hits));
    }

    /// <summary>Every query word as a term in all four text fields (titles boosted), the last word also as a prefix,
    /// English words also fuzzy (Elasticsearch's AUTO edits), all as SHOULD clauses: more matched words rank higher.</summary>
    private static BooleanQuery BuildTextQuery(Dictionary<string, TermMatcher> matchers, IndexReader reader)
    {
        var query = new BooleanQuery();
        foreach (var (field, matcher) in matchers)
        {
            var boost = field.StartsWith("title", StringComparison.Ordinal) ? Analysis.TitleBoost : 1f;
            foreach (var term in matcher.Terms)
                query.Add(new TermQuery(new Term(field, term)) { Boost = boost }, Occur.SHOULD);
            // Fuzzy only for words the field does not hold as typed: a correctly spelt word needs no expansion, and
            // expanding every word (up to 50 neighbours each) was most of the query time at 100,000 articles.
            foreach (var term in matcher.Fuzzy)
                if (reader.DocFreq(new Term(field, term)) == 0)
                    query.Add(new FuzzyQuery(new Term(field, term), Analysis.AutoEdits(term), TermMatcher.FuzzyPrefixLength) { Boost = boost * 0.3f }, Occur.SHOULD);
            if (matcher.Prefix is { } prefix && field.EndsWith("_en", StringComparison.Ordinal))
                query.Add(new PrefixQuery(new Term(field, prefix)) { Boost = boost * 0.5f }, Occur.SHOULD);
        }
        return query;
    }

    /// <summary>Filters repeat (a handful of language/visibility/status combinations), so each is cached per index
    /// segment: CachingWrapperFilter keeps the matching documents of a segment as a bit set until the segment goes.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Filter> _filters = new(StringComparer.Ordinal);

    private Filter? FilterFor(SearchQuery query)
    {
        if (BuildFilter(query) is not { } filter)
            return null;
        var key = filter.ToString();
        if (_filters.Count > 1000)
            _filters.Clear();
        return _filters.GetOrAdd(key, _ => new CachingWrapperFilter(new QueryWrapperFilter(filter)));
    }

    private static BooleanQuery? BuildFilter(SearchQuery query)
    {
        var filter = new BooleanQuery();
        AnyOf(filter, "language", query.Languages);
        AnyOf(filter, "visibility", query.Visibilities);
        AnyOf(filter, "status", query.Statuses);
        if (!string.IsNullOrEmpty(query.Category))
            filter.Add(new TermQuery(new Term("category", query.Category)), Occur.MUST);
        return filter.Clauses.Count == 0 ? null : filter;
    }

    private static void AnyOf(BooleanQuery filter, string field, IReadOnlyList<string> values)
    {
        if (values.Count == 0)
            return;
        var any = new BooleanQuery();
        foreach (var value in values)
            any.Add(new TermQuery(new Term(field, value)), Occur.SHOULD);
        filter.Add(any, Occur.MUST);
    }

    internal static Document ToLucene(SearchDocument source)
    {
        var family = SearchLanguages.Family(source.Language);
        var doc = new Document
        {
            new StringField("id", source.Id, Field.Store.YES),
            new StringField("language", source.Language, Field.Store.YES),
            new StringField("visibility", source.Visibility, Field.Store.YES),
            new StringField("status", source.Status, Field.Store.YES),
            new StoredField("title", source.Title),
            new StoredField("body", source.Body),
            new TextField(Analysis.TitleField(family), source.Title, Field.Store.NO),
            new TextField(Analysis.BodyField(family), source.Body, Field.Store.NO),
            new StoredField("updated", source.UpdatedAt.UtcTicks.ToString(CultureInfo.InvariantCulture)),
        };
        if (source.Slug is not null)
            doc.Add(new StoredField("slug", source.Slug));
        foreach (var category in source.Categories)
            doc.Add(new StringField("category", category, Field.Store.YES));
        foreach (var tag in source.Tags)
            doc.Add(new StringField("tag", tag, Field.Store.YES));
        return doc;
    }

    public Task<IIndexRebuild> BeginRebuildAsync(CancellationToken cancellationToken = default)
    {
        var name = NewGenerationName();
        return Task.FromResult<IIndexRebuild>(new Rebuild(this, name, Generation.Open(Path.Combine(_root, name), create: true)));
    }

    /// <summary>Makes <paramref name="next"/> current; returns the generation it replaced, for <see cref="Retire"/>.</summary>
    private Generation SwapIn(string name, Generation next)
    {
        Generation old;
        _swap.EnterWriteLock();
        try
        {
            WritePointer(name);
            old = _current;
            _current = next;
        }
        finally
        {
            _swap.ExitWriteLock();
        }
        _logger.LogInformation("Search index rebuilt: {Generation} is now in use.", name);
        return old;
    }

    /// <summary>Test hook: runs before a replaced generation is closed (a test makes it throw, as a full disk would).</summary>
    internal Action? BeforeRetire { get; set; }

    /// <summary>Closes and deletes a replaced generation, best effort: the swap is done, and a failure here must not
    /// undo it (the folder is removed at the next start).</summary>
    private void Retire(Generation old)
    {
        try
        {
            BeforeRetire?.Invoke();
            old.Dispose();
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "Closing the replaced search index {Folder} failed; the new index is in use, and the old folder is removed at the next start.", old.Path);
        }
        TryDelete(old.Path);
    }

    private void WritePointer(string name)
    {
        var pointer = Path.Combine(_root, CurrentFile);
        var temporary = pointer + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(System.Text.Encoding.UTF8.GetBytes(name));
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, pointer, overwrite: true);
    }

    /// <summary>Generation folders are "g" and 21 digits (<see cref="NewGenerationName"/>).</summary>
    private static readonly System.Text.RegularExpressions.Regex GenerationName = new("^g[0-9]{21}$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>Removes generations a crash or a swap left behind, and nothing else: the root may be a folder that
    /// also holds other data (Search:LuceneDirectory pointed at the data directory), which is never touched.</summary>
    private void RemoveStaleGenerations(string keep)
    {
        foreach (var folder in System.IO.Directory.EnumerateDirectories(_root))
        {
            var name = Path.GetFileName(folder);
            if (name != keep && GenerationName.IsMatch(name))
                TryDelete(folder);
        }
    }

    private void TryDelete(string folder)
    {
        try
        {
            System.IO.Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(e, "Could not delete the old search index folder {Folder}; it is unused and may be removed by hand.", folder);
        }
    }

    private static string NewGenerationName() => "g" + DateTime.UtcNow.ToString("yyyyMMddHHmmssfffffff", CultureInfo.InvariantCulture);

    public void Dispose()
    {
        _current.Dispose();
        _swap.Dispose();
    }

    private sealed class Generation : IDisposable
    {
        private Generation(string path, LuceneDirectory directory, IndexWriter writer)
        {
            Path = path;
            Directory = directory;
            Writer = writer;
            Searchers = new SearcherManager(writer, applyAllDeletes: true, searcherFactory: null);
        }

        public string Path { get; }
        public LuceneDirectory Directory { get; }
        public IndexWriter Writer { get; }
        public SearcherManager Searchers { get; }

        public static Generation Open(string path, bool create)
        {
            var directory = FSDirectory.Open(new DirectoryInfo(path));
            var config = new IndexWriterConfig(Analysis.Version, Analysis.PerField())
            {
                OpenMode = create ? OpenMode.CREATE : OpenMode.CREATE_OR_APPEND,
            };
            var writer = new IndexWriter(directory, config);
            if (create)
                writer.Commit();
            return new Generation(path, directory, writer);
        }

        public void CommitAndRefresh()
        {
            Writer.Commit();
            Searchers.MaybeRefreshBlocking();
        }

        public void Dispose()
        {
            Searchers.Dispose();
            Writer.Dispose();
            Directory.Dispose();
        }
    }

    private sealed class Rebuild(LuceneSearchIndex owner, string name, Generation next) : IIndexRebuild
    {
        private bool _done;

        public Task AddAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default)
        {
            foreach (var document in documents)
                next.Writer.UpdateDocument(new Term("id", document.Id), ToLucene(document));
            return Task.CompletedTask;
        }

        public Task CompleteAsync(CancellationToken cancellationToken = default)
        {
            next.CommitAndRefresh();
            var old = owner.SwapIn(name, next);
            // From here on `next` is the live index: whatever happens to the old one, disposing this rebuild must not close it.
            _done = true;
            owner.Retire(old);
            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            if (!_done)
            {
                next.Dispose();
                owner.TryDelete(next.Path);
            }
            return ValueTask.CompletedTask;
        }
    }
}
