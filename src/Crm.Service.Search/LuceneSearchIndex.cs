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

    private long _forceMerges;
    private int _merging;

    /// <summary>How many full merges (ForceMerge: the whole index rewritten) this index ran; only rebuilds do.</summary>
    internal long ForceMerges => Interlocked.Read(ref _forceMerges);

    /// <summary>The feed calls it when caught up. The live index keeps Lucene's normal merge policy (tiered, at most
    /// 5 segments per tier): a full ForceMerge here rewrote the whole index every 1% of writes, at scale every few
    /// hundred writes (review R3). This only lets the policy pick merges of small segments a burst left behind;
    /// a full merge happens after a rebuild only, before the swap. One at a time, in the background.</summary>
    public Task OptimizeAsync(CancellationToken cancellationToken = default)
    {
        Generation generation;
        _swap.EnterReadLock();
        try
        {
            generation = _current;
        }
        finally
        {
            _swap.ExitReadLock();
        }
        if (Interlocked.CompareExchange(ref _merging, 1, 0) != 0)
            return Task.CompletedTask;
        return Task.Run(() =>
        {
            try
            {
                generation.Writer.MaybeMerge();
                generation.Writer.WaitForMerges();
                generation.CommitAndRefresh();
            }
            catch (Exception e) when (e is ObjectDisposedException || e.GetType().Name == "AlreadyClosedException")
            {
                // A rebuild swapped this generation out meanwhile: the new one was merged before it went live.
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "Merging the search index after a burst of writes failed; searches stay correct, only slower.");
            }
            finally
            {
                Volatile.Write(ref _merging, 0);
            }
        }, CancellationToken.None);
    }

    private static int SegmentCountOf(Generation generation)
    {
        var searcher = generation.Searchers.Acquire();
        try
        {
            return searcher.IndexReader.Leaves.Count;
        }
        finally
        {
            generation.Searchers.Release(searcher);
        }
    }

    /// <summary>The commit-data key of the version marker (<see cref="ISearchIndex.AppliedSequenceAsync"/>).</summary>
    internal const string SequenceKey = "crm.applied-sequence";

    public Task<long?> AppliedSequenceAsync(CancellationToken cancellationToken = default)
    {
        _swap.EnterReadLock();
        try
        {
            return Task.FromResult(Generation.AppliedSequence(_current.Writer));
        }
        finally
        {
            _swap.ExitReadLock();
        }
    }

    /// <summary>Commits the marker with the index's user data, so it is exactly as durable as the documents before it.</summary>
    public Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default)
    {
        _swap.EnterReadLock();
        try
        {
            lock (_current)
            {
                if (Generation.AppliedSequence(_current.Writer) is { } applied && applied >= sequence)
                    return Task.CompletedTask;
                Generation.SetAppliedSequence(_current.Writer, sequence);
                _current.Writer.Commit();
            }
        }
        finally
        {
            _swap.ExitReadLock();
        }
        return Task.CompletedTask;
    }

    private const string IndexedTeamField = "team_stored";

    public Task<IReadOnlyDictionary<string, string>?> IndexedTeamsAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default)
    {
        var teams = new Dictionary<string, string>(StringComparer.Ordinal);
        _swap.EnterReadLock();
        try
        {
            var searcher = _current.Searchers.Acquire();
            try
            {
                foreach (var id in ids.Distinct(StringComparer.Ordinal))
                {
                    var top = searcher.Search(new TermQuery(new Term("id", id)), 1);
                    if (top.ScoreDocs.Length == 1 && searcher.Doc(top.ScoreDocs[0].Doc).Get(IndexedTeamField) is { } team)
                        teams[id] = team;
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
        return Task.FromResult<IReadOnlyDictionary<string, string>?>(teams);
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

    /// <summary>Benchmark hook: when set, each search reports the timestamps (Stopwatch ticks, [0..5]) and the thread's
    /// allocated bytes ([6..11]) at the start and the end of its phases: analysis of the query, query building, the
    /// search itself, stored fields, snippets.</summary>
    internal Action<long[]>? Trace { get; set; }

    private static void Mark(long[] trace, int phase)
    {
        trace[phase] = System.Diagnostics.Stopwatch.GetTimestamp();
        trace[6 + phase] = GC.GetAllocatedBytesForCurrentThread();
    }

    /// <summary>Segments of the current index (the benchmark prints it: every query pays per segment).</summary>
    internal int SegmentCount
    {
        get
        {
            _swap.EnterReadLock();
            try
            {
                return SegmentCountOf(_current);
            }
            finally
            {
                _swap.ExitReadLock();
            }
        }
    }

    public Task<SearchResults> SearchAsync(SearchQuery query, CancellationToken cancellationToken = default)
    {
        var trace = Trace is null ? null : new long[12];
        if (trace is not null)
            Mark(trace, 0);
        var matchers = new[] { Analysis.TitleEn, Analysis.BodyEn, Analysis.TitleZh, Analysis.BodyZh }
            .ToDictionary(f => f, f => new TermMatcher(f, query.Text ?? ""));
        if (matchers.Values.All(m => m.IsEmpty))
            return Task.FromResult(new SearchResults(0, []));
        var take = Math.Clamp(query.Take, 1, 100);
        // Bounded so that skip + take cannot overflow (the API refuses more; see SearchQuery.MaxSkip).
        var skip = Math.Clamp(query.Skip, 0, SearchQuery.MaxSkip);
        if (trace is not null)
            Mark(trace, 1);

        // Stored fields are copied out under the lock; snippets (which analyse text) are built after it is released,
        // so a slow one never holds up a swap, nor, through the waiting swap, every other search and write.
        var found = new List<(string Id, double Score, string Title, string Body, string Language, string Visibility, string Status, string? Slug, string Kind)>(take);
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
                if (trace is not null)
                    Mark(trace, 2);
                // In-order collection: a disjunction is then scored by BooleanScorer2 (one pass over the postings)
                // rather than BooleanScorer, which allocates a table of 2,048 buckets per segment per search — most of
                // a search's garbage, and gen0 collections were the whole p99 (docs/benchmarks.md).
                var collector = TopScoreDocCollector.Create(skip + take, true);
                searcher.Search(lucene, collector);
                var top = collector.GetTopDocs();
                total = top.TotalHits;
                if (trace is not null)
                    Mark(trace, 3);
                foreach (var scored in top.ScoreDocs.Skip(skip))
                {
                    var doc = searcher.Doc(scored.Doc, HitFields);
                    found.Add((doc.Get("id"), scored.Score, doc.Get("title"), doc.Get("body") ?? "", doc.Get("language"), doc.Get("visibility"), doc.Get("status"), doc.Get("slug"),
                        doc.Get("kind") ?? SearchKinds.Article));
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
        if (trace is not null)
            Mark(trace, 4);
        var hits = found.Select(h =>
        {
            var bodyField = Analysis.BodyField(SearchLanguages.Family(h.Language));
            return new SearchHit(h.Id, h.Score, h.Title, Snippets.Build(h.Body, bodyField, matchers[bodyField]), h.Language, h.Visibility, h.Status, h.Slug) { Kind = h.Kind };
        }).ToList();
        if (trace is not null)
        {
            Mark(trace, 5);
            Trace?.Invoke(trace);
        }
        return Task.FromResult(new SearchResults(total, hits));
    }

    /// <summary>The stored fields a hit shows (categories, tags and dates are only for filters).</summary>
    private static readonly ISet<string> HitFields = new HashSet<string>(StringComparer.Ordinal) { "id", "title", "body", "language", "visibility", "status", "slug", "kind" };

    /// <summary>Every query word as a term in all four text fields (titles boosted), the last word also as a prefix,
    /// English words also fuzzy (Elasticsearch's AUTO edits), all as SHOULD clauses: more matched words rank higher.</summary>
    private static BooleanQuery BuildTextQuery(Dictionary<string, TermMatcher> matchers, IndexReader reader)
    {
        var query = new BooleanQuery();
        foreach (var (field, matcher) in matchers)
        {
            var boost = field.StartsWith("title", StringComparison.Ordinal) ? Analysis.TitleBoost : 1f;
            var contexts = TermContexts(reader, field, matcher.Terms);
            for (var i = 0; i < matcher.Terms.Count; i++)
                if (contexts[i].DocFreq > 0)
                    query.Add(new TermQuery(new Term(field, matcher.Terms[i]), contexts[i]) { Boost = boost }, Occur.SHOULD);
            // Fuzzy only for words the field does not hold as typed: a correctly spelt word needs no expansion, and
            // expanding every word (up to 50 neighbours each) was most of the query time at 100,000 articles.
            foreach (var term in matcher.Fuzzy)
                if (IndexOf(matcher.Terms, term) is var at && (at < 0 ? reader.DocFreq(new Term(field, term)) : contexts[at].DocFreq) == 0)
                    query.Add(new FuzzyQuery(new Term(field, term), Analysis.AutoEdits(term), TermMatcher.FuzzyPrefixLength) { Boost = boost * 0.3f }, Occur.SHOULD);
            if (matcher.Prefix is { } prefix && field.EndsWith("_en", StringComparison.Ordinal))
                query.Add(new PrefixQuery(new Term(field, prefix)) { Boost = boost * 0.5f }, Occur.SHOULD);
        }
        return query;
    }

    private static int IndexOf(IReadOnlyList<string> terms, string term)
    {
        for (var i = 0; i < terms.Count; i++)
            if (terms[i] == term)
                return i;
        return -1;
    }

    /// <summary>Looks up all of a field's query terms with one terms enumerator per segment: a TermQuery left to itself
    /// opens an enumerator per term per segment (kilobytes of garbage each; with a dozen segments that was most of a
    /// search's garbage). A term no segment holds gets no clause at all.</summary>
    private static TermContext[] TermContexts(IndexReader reader, string field, IReadOnlyList<string> terms)
    {
        var top = reader.Context;
        var contexts = new TermContext[terms.Count];
        var bytes = new Lucene.Net.Util.BytesRef[terms.Count];
        for (var i = 0; i < terms.Count; i++)
        {
            contexts[i] = new TermContext(top);
            bytes[i] = new Lucene.Net.Util.BytesRef(terms[i]);
        }
        if (terms.Count == 0)
            return contexts;
        foreach (var leaf in top.Leaves)
        {
            if (((AtomicReader)leaf.Reader).GetTerms(field) is not { } fieldTerms)
                continue;
            var termsEnum = fieldTerms.GetEnumerator();
            for (var i = 0; i < terms.Count; i++)
                if (termsEnum.SeekExact(bytes[i]))
                    contexts[i].Register(termsEnum.GetTermState(), leaf.Ord, termsEnum.DocFreq, termsEnum.TotalTermFreq);
        }
        return contexts;
    }

    /// <summary>Filters repeat (a handful of language/visibility/status combinations), so each is cached per index
    /// segment: CachingWrapperFilter keeps the matching documents of a segment as a bit set until the segment goes.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Filter> _filters = new(StringComparer.Ordinal);

    private Filter? FilterFor(SearchQuery query)
    {
        if (query.Languages.Count == 0 && query.Visibilities.Count == 0 && query.Statuses.Count == 0 && string.IsNullOrEmpty(query.Category)
            && query.Kinds.Count == 0 && query.ExcludedTeams.Count == 0 && query.ExcludedIds.Count == 0)
            return null;
        // Excluded ids change with every pending move: not worth caching. They are a TermsFilter (one sorted term
        // set, seeked per segment), not a MUST_NOT clause each: thousands of ids (a long ticket's messages moving into a
        // hidden team) would pass BooleanQuery.MaxClauseCount (1,024) and fail every search with TooManyClauses (KW5).
        if (query.ExcludedIds.Count > 0)
        {
            var combined = new Lucene.Net.Queries.BooleanFilter();
            if (BuildFilter(query) is { } rest)
                combined.Add(new Lucene.Net.Queries.FilterClause(new QueryWrapperFilter(rest), Occur.MUST));
            combined.Add(new Lucene.Net.Queries.FilterClause(
                new Lucene.Net.Queries.TermsFilter("id", [.. query.ExcludedIds.Distinct(StringComparer.Ordinal).Select(id => new Lucene.Net.Util.BytesRef(id))]), Occur.MUST_NOT));
            return combined;
        }
        // Values are languages, visibilities, statuses, kinds, team ids and a category id: none holds a control character.
        var key = string.Join('\u001e', string.Join('\u001f', query.Languages), string.Join('\u001f', query.Visibilities), string.Join('\u001f', query.Statuses),
            query.Category, string.Join('\u001f', query.Kinds), string.Join('\u001f', query.ExcludedTeams));
        if (_filters.Count > 1000)
            _filters.Clear();
        return _filters.GetOrAdd(key, _ => new CachingWrapperFilter(new QueryWrapperFilter(BuildFilter(query)!)));
    }

    private static BooleanQuery? BuildFilter(SearchQuery query)
    {
        var filter = new BooleanQuery();
        AnyOf(filter, "language", query.Languages);
        AnyOf(filter, "visibility", query.Visibilities);
        AnyOf(filter, "status", query.Statuses);
        if (!string.IsNullOrEmpty(query.Category))
            filter.Add(new TermQuery(new Term("category", query.Category)), Occur.MUST);
        AnyOf(filter, "kind", query.Kinds);
        if (query.ExcludedTeams.Count > 0)
        {
            // A query of MUST_NOT clauses alone matches nothing in Lucene: exclude from everything.
            if (filter.Clauses.Count == 0)
                filter.Add(new MatchAllDocsQuery(), Occur.MUST);
            foreach (var team in query.ExcludedTeams)
                filter.Add(new TermQuery(new Term("team", team)), Occur.MUST_NOT);
        }
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
            new StringField("kind", source.Kind, Field.Store.YES),
        };
        if (source.Team is not null)
            doc.Add(new StringField("team", source.Team, Field.Store.NO));
        // Stored for IndexedTeamsAsync, "" for none: a document written before this field reads as "unknown".
        doc.Add(new StoredField(IndexedTeamField, source.Team ?? ""));
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
                // Every search pays per segment (each term is looked up in each), and the feed commits small batches:
                // fewer segments per tier than the default 10 trade a little merging on rare article writes for reads.
                MergePolicy = new TieredMergePolicy { SegmentsPerTier = 5, MaxMergeAtOnce = 5 },
            };
            var writer = new IndexWriter(directory, config);
            if (create)
                writer.Commit();
            return new Generation(path, directory, writer);
        }

        public static long? AppliedSequence(IndexWriter writer) =>
            writer.CommitData is { } data && data.TryGetValue(SequenceKey, out var value)
                && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var sequence) ? sequence : null;

        /// <summary>Sets the marker for the next commit (user data is kept across later commits until set again).</summary>
        public static void SetAppliedSequence(IndexWriter writer, long sequence) =>
            writer.SetCommitData(new Dictionary<string, string> { [SequenceKey] = sequence.ToString(CultureInfo.InvariantCulture) });

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

        public Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default)
        {
            Generation.SetAppliedSequence(next.Writer, sequence);
            return Task.CompletedTask;
        }

        /// <summary>A rebuilt index is read far more than written: one segment, merged before it goes live.</summary>
        public Task OptimizeAsync(CancellationToken cancellationToken = default)
        {
            next.Writer.ForceMerge(1);
            Interlocked.Increment(ref owner._forceMerges);
            next.Writer.Commit();
            return Task.CompletedTask;
        }

        public Task CompleteAsync(CancellationToken cancellationToken = default)
        {
            // Cheap when OptimizeAsync ran (nothing left to merge).
            next.Writer.ForceMerge(1);
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
