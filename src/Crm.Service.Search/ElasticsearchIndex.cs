using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Crm.Service.Search;

/// <summary>
/// Elasticsearch through its documented REST API (the official client is not available here). Documents are written
/// and searched through an alias; each build is a concrete index "{alias}-{timestamp}" created from an index
/// template that declares the per-language analyzers. A rebuild fills a new index and then moves the alias in one
/// atomic "_aliases" call, so searches never see a half-built index (zero-downtime reindex).
/// </summary>
public sealed class ElasticsearchIndex : ISearchIndex
{
    public const string HttpClientName = "elasticsearch";
    private readonly HttpClient _http;
    private readonly ElasticsearchOptions _options;
    private readonly ILogger<ElasticsearchIndex> _logger;
    private readonly SemaphoreSlim _ready = new(1, 1);
    private bool _isReady;

    public ElasticsearchIndex(HttpClient http, ElasticsearchOptions options, ILogger<ElasticsearchIndex> logger)
    {
        _http = http;
        _options = options;
        _logger = logger;
        _http.BaseAddress ??= options.Url ?? throw new ArgumentException("Search:Elasticsearch:Url is required.", nameof(options));
        _http.Timeout = options.Timeout;
        if (!string.IsNullOrEmpty(options.ApiKey))
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", options.ApiKey);
        else if (!string.IsNullOrEmpty(options.Username))
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes(options.Username + ":" + options.Password)));
    }

    public string Engine => SearchOptions.ElasticsearchEngine;

    public string Identity => $"{Engine}:{_http.BaseAddress!.Authority}/{Alias}";

    private string Alias => _options.Alias;

    /// <summary>The index template: every "{alias}-*" index gets these settings and mappings.</summary>
    internal JsonObject Template() => new()
    {
        ["index_patterns"] = new JsonArray(Alias + "-*"),
        ["template"] = new JsonObject
        {
            ["settings"] = new JsonObject
            {
                ["analysis"] = new JsonObject
                {
                    ["analyzer"] = new JsonObject
                    {
                        // The same chains as Analysis.English and Analysis.Cjk.
                        ["crm_english"] = new JsonObject { ["type"] = "english" },
                        ["crm_cjk"] = new JsonObject
                        {
                            ["type"] = "custom",
                            ["tokenizer"] = "standard",
                            ["filter"] = new JsonArray("cjk_width", "lowercase", "cjk_bigram", "stop"),
                        },
                    },
                },
            },
            ["mappings"] = new JsonObject
            {
                ["dynamic"] = "strict",
                ["properties"] = new JsonObject
                {
                    ["id"] = Keyword(), ["language"] = Keyword(), ["visibility"] = Keyword(), ["status"] = Keyword(),
                    ["category"] = Keyword(), ["tag"] = Keyword(), ["kind"] = Keyword(), ["team"] = Keyword(),
                    ["slug"] = new JsonObject { ["type"] = "keyword", ["index"] = false },
                    ["title"] = new JsonObject { ["type"] = "text", ["index"] = false },
                    ["body"] = new JsonObject { ["type"] = "text", ["index"] = false },
                    [Analysis.TitleEn] = Text("crm_english"), [Analysis.BodyEn] = Text("crm_english"),
                    [Analysis.TitleZh] = Text("crm_cjk"), [Analysis.BodyZh] = Text("crm_cjk"),
                    ["updated"] = new JsonObject { ["type"] = "date" },
                },
            },
        },
    };

    private static JsonObject Keyword() => new() { ["type"] = "keyword" };

    private static JsonObject Text(string analyzer) => new() { ["type"] = "text", ["analyzer"] = analyzer };

    /// <summary>Puts the template and, on first use, creates the first index behind the alias.</summary>
    private async Task EnsureReadyAsync(CancellationToken cancellationToken)
    {
        if (_isReady)
            return;
        await _ready.WaitAsync(cancellationToken);
        try
        {
            if (_isReady)
                return;
            await SendAsync(HttpMethod.Put, $"_index_template/{Alias}", Template(), cancellationToken);
            if (await CurrentIndexAsync(cancellationToken) is null)
                await SendAsync(HttpMethod.Put, NewIndexName(), new JsonObject { ["aliases"] = new JsonObject { [Alias] = new JsonObject() } }, cancellationToken);
            _isReady = true;
        }
        finally
        {
            _ready.Release();
        }
    }

    /// <summary>The concrete index behind the alias, or null when there is none yet.</summary>
    private async Task<string?> CurrentIndexAsync(CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync($"_alias/{Alias}", cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
            return null;
        var body = await ReadAsync(response, "GET _alias", cancellationToken);
        return body.AsObject().Select(p => p.Key).OrderDescending(StringComparer.Ordinal).FirstOrDefault();
    }

    private string NewIndexName() => $"{Alias}-{DateTime.UtcNow.ToString("yyyyMMddHHmmssfffffff", CultureInfo.InvariantCulture)}";

    public async Task UpsertAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default)
    {
        if (documents.Count == 0)
            return;
        await EnsureReadyAsync(cancellationToken);
        await BulkAsync(Alias, documents, [], _options.Refresh, cancellationToken);
    }

    public async Task DeleteAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default)
    {
        if (ids.Count == 0)
            return;
        await EnsureReadyAsync(cancellationToken);
        await BulkAsync(Alias, [], ids, _options.Refresh, cancellationToken);
    }

    internal static JsonObject ToSource(SearchDocument document)
    {
        var family = SearchLanguages.Family(document.Language);
        var source = new JsonObject
        {
            ["id"] = document.Id, ["language"] = document.Language, ["visibility"] = document.Visibility, ["status"] = document.Status,
            ["slug"] = document.Slug, ["title"] = document.Title, ["body"] = document.Body,
            ["category"] = new JsonArray([.. document.Categories.Select(c => (JsonNode)c)]),
            ["tag"] = new JsonArray([.. document.Tags.Select(t => (JsonNode)t)]),
            [Analysis.TitleField(family)] = document.Title, [Analysis.BodyField(family)] = document.Body,
            ["updated"] = document.UpdatedAt.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
        };
        // Articles carry neither (an article index created before these fields has a strict mapping without them).
        // Records always carry "team", null for none: IndexedTeamsAsync tells "no team" from "written before this".
        if (document.Kind != SearchKinds.Article)
        {
            source["kind"] = document.Kind;
            source["team"] = document.Team;
        }
        return source;
    }

    /// <summary>Writes CJK as UTF-8 instead of six-byte \uXXXX escapes (the payload is JSON in a request body, not HTML).</summary>
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>"_bulk" requests (NDJSON), split by size. A per-item failure fails the call (the feed then hands the
    /// batch again); deleting a document that is not there is no failure. Writes through the alias require it to exist
    /// (require_alias), so a vanished alias is an error instead of a new concrete index of that name.</summary>
    private async Task BulkAsync(string index, IReadOnlyList<SearchDocument> upserts, IReadOnlyList<string> deletes, string refresh, CancellationToken cancellationToken)
    {
        // A batch of 500 long articles, each body sent twice, can exceed Elasticsearch's request limit: split by size.
        var ndjson = new StringBuilder();
        var bytes = 0;
        foreach (var document in upserts)
        {
            var lines = new JsonObject { ["index"] = new JsonObject { ["_id"] = document.Id } }.ToJsonString(Relaxed) + "\n" + ToSource(document).ToJsonString(Relaxed) + "\n";
            var size = Encoding.UTF8.GetByteCount(lines);
            if (ndjson.Length > 0 && bytes + size > _options.MaxBulkBytes)
            {
                await BulkRequestAsync(index, ndjson.ToString(), refresh, cancellationToken);
                ndjson.Clear();
                bytes = 0;
            }
            ndjson.Append(lines);
            bytes += size;
        }
        foreach (var id in deletes)
            ndjson.Append(new JsonObject { ["delete"] = new JsonObject { ["_id"] = id } }.ToJsonString(Relaxed)).Append('\n');
        if (ndjson.Length > 0)
            await BulkRequestAsync(index, ndjson.ToString(), refresh, cancellationToken);
    }

    private async Task BulkRequestAsync(string index, string ndjson, string refresh, CancellationToken cancellationToken)
    {
        using var content = new StringContent(ndjson, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        var requireAlias = index == Alias ? "&require_alias=true" : "";
        using var response = await Call(() => _http.PostAsync($"{index}/_bulk?refresh={refresh}{requireAlias}", content, cancellationToken), "POST _bulk");
        var body = await ReadAsync(response, "POST _bulk", cancellationToken);
        if (body["errors"]?.GetValue<bool>() != true)
            return;
        foreach (var item in body["items"]!.AsArray())
        {
            var (action, result) = item!.AsObject().First();
            var status = result!["status"]!.GetValue<int>();
            if (status >= 300 && !(action == "delete" && status == 404))
                throw new SearchUnavailableException($"Elasticsearch refused to {action} document {result["_id"]} (HTTP {status}): {result["error"]?.ToJsonString()}. Check the index mapping (docs/search.md) or reindex.");
        }
    }

    public async Task<IReadOnlyDictionary<string, string>?> IndexedTeamsAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken = default)
    {
        var teams = new Dictionary<string, string>(StringComparer.Ordinal);
        if (ids.Count == 0)
            return teams;
        await EnsureReadyAsync(cancellationToken);
        // _mget, not _search: a get is real-time (it reads the translog), while _search sees only refreshed segments.
        // With Refresh=false the next batch would read the team from before the previous batch's write, decide nothing
        // moved and leave the messages under the team they were last written with (review KB2).
        foreach (var chunk in ids.Distinct(StringComparer.Ordinal).Chunk(1000))
        {
            var request = new JsonObject { ["ids"] = new JsonArray([.. chunk.Select(v => (JsonNode)v)]) };
            using var response = await SendAsync(HttpMethod.Post, $"{Alias}/_mget?realtime=true&_source_includes=team", request, cancellationToken);
            var body = await ReadAsync(response, "POST _mget", cancellationToken);
            foreach (var doc in body["docs"]?.AsArray() ?? [])
                if (doc?["found"]?.GetValue<bool>() == true && doc["_source"] is JsonObject source && source.TryGetPropertyValue("team", out var team))
                    teams[doc["_id"]!.GetValue<string>()] = team?.GetValue<string>() ?? "";
        }
        return teams;
    }

    public async Task<SearchResults> SearchAsync(SearchQuery query, CancellationToken cancellationToken = default)
    {
        var enMatcher = new TermMatcher(Analysis.BodyEn, query.Text ?? "");
        var zhMatcher = new TermMatcher(Analysis.BodyZh, query.Text ?? "");
        if (enMatcher.IsEmpty && zhMatcher.IsEmpty)
            return new SearchResults(0, []);
        await EnsureReadyAsync(cancellationToken);
        var request = BuildSearch(query);
        using var response = await SendAsync(HttpMethod.Post, $"{Alias}/_search", request, cancellationToken);
        var body = await ReadAsync(response, "POST _search", cancellationToken);
        var hitsNode = body["hits"]!;
        var total = hitsNode["total"]?["value"]?.GetValue<long>() ?? 0;
        var hits = new List<SearchHit>();
        foreach (var hit in hitsNode["hits"]!.AsArray())
        {
            var source = hit!["_source"]!;
            var language = source["language"]!.GetValue<string>();
            var highlight = hit["highlight"]?[Analysis.BodyField(SearchLanguages.Family(language))]?[0]?.GetValue<string>();
            hits.Add(new SearchHit(hit["_id"]!.GetValue<string>(), hit["_score"]?.GetValue<double>() ?? 0, source["title"]!.GetValue<string>(),
                highlight ?? WebUtility.HtmlEncode(Truncate(source["body"]?.GetValue<string>() ?? "")),
                language, source["visibility"]!.GetValue<string>(), source["status"]!.GetValue<string>(), source["slug"]?.GetValue<string>())
            { Kind = source["kind"]?.GetValue<string>() ?? SearchKinds.Article });
        }
        return new SearchResults(total, hits);
    }

    private static string Truncate(string text) => text.Length <= Snippets.DefaultLength ? text : text[..Snippets.DefaultLength] + "…";

    /// <summary>The query: the words in all four text fields (titles boosted, AUTO fuzziness), plus the last word as a
    /// prefix ("bool_prefix"), filters as non-scoring "filter" clauses, a highlighted fragment of the body.</summary>
    internal static JsonObject BuildSearch(SearchQuery query)
    {
        var filters = new JsonArray();
        void AnyOf(string field, IReadOnlyList<string> values)
        {
            if (values.Count > 0)
                filters.Add(new JsonObject { ["terms"] = new JsonObject { [field] = new JsonArray([.. values.Select(v => (JsonNode)v)]) } });
        }
        AnyOf("language", query.Languages);
        AnyOf("visibility", query.Visibilities);
        AnyOf("status", query.Statuses);
        if (!string.IsNullOrEmpty(query.Category))
            filters.Add(new JsonObject { ["term"] = new JsonObject { ["category"] = query.Category } });
        AnyOf("kind", query.Kinds);
        var mustNot = new JsonArray();
        if (query.ExcludedTeams.Count > 0)
            mustNot.Add(new JsonObject { ["terms"] = new JsonObject { ["team"] = new JsonArray([.. query.ExcludedTeams.Select(v => (JsonNode)v)]) } });
        // An ids query is one term-set query, not a clause per id, so the clause limit does not apply (KW5); chunks of
        // 10,000 stay well under index.max_terms_count (65,536), should a cluster enforce it on ids as on terms.
        foreach (var chunk in query.ExcludedIds.Distinct(StringComparer.Ordinal).Chunk(10_000))
            mustNot.Add(new JsonObject { ["ids"] = new JsonObject { ["values"] = new JsonArray([.. chunk.Select(v => (JsonNode)v)]) } });
        var boost = Analysis.TitleBoost.ToString(CultureInfo.InvariantCulture);
        var text = Bounded(query.Text ?? "");
        var fragment = new JsonObject { ["fragment_size"] = Snippets.DefaultLength, ["number_of_fragments"] = 1, ["no_match_size"] = Snippets.DefaultLength };
        return new JsonObject
        {
            ["from"] = Math.Clamp(query.Skip, 0, SearchQuery.MaxSkip),
            ["size"] = Math.Clamp(query.Take, 1, 100),
            ["track_total_hits"] = true,
            ["_source"] = new JsonArray("title", "body", "language", "visibility", "status", "slug", "kind"),
            ["query"] = new JsonObject
            {
                ["bool"] = new JsonObject
                {
                    ["should"] = new JsonArray(
                        new JsonObject
                        {
                            ["multi_match"] = new JsonObject
                            {
                                ["query"] = text,
                                ["fields"] = new JsonArray($"{Analysis.TitleEn}^{boost}", Analysis.BodyEn, $"{Analysis.TitleZh}^{boost}", Analysis.BodyZh),
                                ["type"] = "most_fields",
                                ["fuzziness"] = "AUTO",
                                ["prefix_length"] = TermMatcher.FuzzyPrefixLength,
                            },
                        },
                        new JsonObject
                        {
                            ["multi_match"] = new JsonObject
                            {
                                ["query"] = text,
                                ["fields"] = new JsonArray($"{Analysis.TitleEn}^{boost}", Analysis.BodyEn),
                                ["type"] = "bool_prefix",
                                ["boost"] = 0.5,
                            },
                        }),
                    ["minimum_should_match"] = 1,
                    ["filter"] = filters,
                    ["must_not"] = mustNot,
                },
            },
            ["highlight"] = new JsonObject
            {
                ["encoder"] = "html",
                ["pre_tags"] = new JsonArray("<mark>"),
                ["post_tags"] = new JsonArray("</mark>"),
                ["fields"] = new JsonObject { [Analysis.BodyEn] = fragment, [Analysis.BodyZh] = fragment.DeepClone() },
            },
        };
    }

    /// <summary>The query text cut after its <see cref="TermMatcher.MaxTerms"/>th word in either analysis, as the Lucene
    /// engine bounds it: a 500-character query must not become hundreds of fuzzy clauses per field.</summary>
    internal static string Bounded(string text)
    {
        var cut = text.Length;
        foreach (var field in new[] { Analysis.TitleEn, Analysis.TitleZh })
        {
            var count = 0;
            foreach (var (_, _, end) in Analysis.Tokens(field, text))
                if (++count == TermMatcher.MaxTerms)
                {
                    cut = Math.Min(cut, end);
                    break;
                }
        }
        return text[..cut];
    }

    /// <summary>The mapping's <c>_meta</c> key of the version marker (<see cref="ISearchIndex.AppliedSequenceAsync"/>).</summary>
    internal const string SequenceMeta = "crm_applied_sequence";

    public async Task<long?> AppliedSequenceAsync(CancellationToken cancellationToken = default)
    {
        await EnsureReadyAsync(cancellationToken);
        using var response = await Call(() => _http.GetAsync($"{Alias}/_mapping", cancellationToken), "GET _mapping");
        var body = await ReadAsync(response, "GET _mapping", cancellationToken);
        var meta = body.AsObject().Select(p => p.Value?["mappings"]?["_meta"]).FirstOrDefault();
        return meta?[SequenceMeta] is JsonValue value && value.TryGetValue<long>(out var sequence) ? sequence : null;
    }

    /// <summary>Puts the marker into the index's mapping <c>_meta</c> (a mapping update; <c>_meta</c> is replaced, not merged).</summary>
    public async Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default)
    {
        if (await AppliedSequenceAsync(cancellationToken) is { } applied && applied >= sequence)
            return;
        await PutMarkerAsync(Alias, sequence, cancellationToken);
    }

    private async Task PutMarkerAsync(string index, long sequence, CancellationToken cancellationToken)
    {
        using (await SendAsync(HttpMethod.Put, $"{index}/_mapping", new JsonObject { ["_meta"] = new JsonObject { [SequenceMeta] = sequence } }, cancellationToken)) { }
    }

    public async Task<long> CountAsync(CancellationToken cancellationToken = default)
    {
        await EnsureReadyAsync(cancellationToken);
        using var response = await Call(() => _http.GetAsync($"{Alias}/_count", cancellationToken), "GET _count");
        var body = await ReadAsync(response, "GET _count", cancellationToken);
        return body["count"]!.GetValue<long>();
    }

    public async Task<IIndexRebuild> BeginRebuildAsync(CancellationToken cancellationToken = default)
    {
        await EnsureReadyAsync(cancellationToken);
        var name = NewIndexName();
        // The template applies; no alias yet, so searches and writes still go to the current index.
        await SendAsync(HttpMethod.Put, name, new JsonObject(), cancellationToken);
        return new Rebuild(this, name);
    }

    private sealed class Rebuild(ElasticsearchIndex owner, string name) : IIndexRebuild
    {
        private bool _done;

        public Task AddAsync(IReadOnlyList<SearchDocument> documents, CancellationToken cancellationToken = default) =>
            documents.Count == 0 ? Task.CompletedTask : owner.BulkAsync(name, documents, [], "false", cancellationToken);

        public Task MarkAppliedAsync(long sequence, CancellationToken cancellationToken = default) => owner.PutMarkerAsync(name, sequence, cancellationToken);

        public async Task CompleteAsync(CancellationToken cancellationToken = default)
        {
            using (await owner.SendAsync(HttpMethod.Post, $"{name}/_refresh", null, cancellationToken)) { }
            var old = await owner.CurrentIndexAsync(cancellationToken);
            var actions = new JsonArray();
            if (old is not null)
                actions.Add(new JsonObject { ["remove"] = new JsonObject { ["index"] = old, ["alias"] = owner.Alias } });
            actions.Add(new JsonObject { ["add"] = new JsonObject { ["index"] = name, ["alias"] = owner.Alias } });
            using (await owner.SendAsync(HttpMethod.Post, "_aliases", new JsonObject { ["actions"] = actions }, cancellationToken)) { }
            _done = true;
            if (old is not null)
            {
                using var deleted = await owner._http.DeleteAsync(old, cancellationToken);
                if (!deleted.IsSuccessStatusCode)
                    owner._logger.LogWarning("The old search index {Index} could not be deleted (HTTP {Status}); it is unused and may be deleted by hand.", old, (int)deleted.StatusCode);
            }
            owner._logger.LogInformation("Search index rebuilt: alias {Alias} now points at {Index}.", owner.Alias, name);
        }

        public async ValueTask DisposeAsync()
        {
            if (!_done)
            {
                using var _ = await owner._http.DeleteAsync(name);
            }
        }
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, JsonNode? body, CancellationToken cancellationToken)
    {
        var response = await Call(() =>
        {
            var request = new HttpRequestMessage(method, path);
            if (body is not null)
                request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            return _http.SendAsync(request, cancellationToken);
        }, $"{method} {path}");
        if (!response.IsSuccessStatusCode)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            response.Dispose();
            throw new SearchUnavailableException($"Elasticsearch answered {method} {path} with HTTP {(int)response.StatusCode}: {Clip(text)}");
        }
        return response;
    }

    private async Task<HttpResponseMessage> Call(Func<Task<HttpResponseMessage>> send, string what)
    {
        try
        {
            return await send();
        }
        catch (HttpRequestException e)
        {
            throw new SearchUnavailableException($"Elasticsearch at {_http.BaseAddress} could not be reached for {what}: {e.Message}. Check Search:Elasticsearch:Url and that the cluster is up.", e);
        }
        catch (TaskCanceledException e) when (e.InnerException is TimeoutException)
        {
            throw new SearchUnavailableException($"Elasticsearch at {_http.BaseAddress} did not answer {what} within {_options.Timeout}.", e);
        }
    }

    private static async Task<JsonNode> ReadAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
            throw new SearchUnavailableException($"Elasticsearch answered {what} with HTTP {(int)response.StatusCode}: {Clip(text)}");
        try
        {
            return JsonNode.Parse(text) ?? throw new JsonException("empty body");
        }
        catch (JsonException e)
        {
            throw new SearchUnavailableException($"Elasticsearch answered {what} with something that is not JSON: {Clip(text)}", e);
        }
    }

    private static string Clip(string text) => text.Length <= 500 ? text : text[..500] + "…";
}
