using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Crm.Service.Search;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Crm.Service.Tests.Search;

/// <summary>
/// A stand-in for Elasticsearch on 127.0.0.1 (none can be installed here) that answers the subset of the REST API
/// our <see cref="ElasticsearchIndex"/> uses, in Elasticsearch's documented request and response formats: index
/// templates, index creation, aliases (GET _alias, atomic POST _aliases), _bulk (NDJSON, per-item status, strict
/// mappings), _search (bool with filter/must_not/should, multi_match most_fields with AUTO fuzziness and bool_prefix,
/// highlight), _count, _refresh and index deletion. Text is analyzed with the analyzer each field's mapping names,
/// and an analyzer the template does not define is refused like Elasticsearch would, so a wrong template fails here.
/// </summary>
internal sealed class FakeElasticsearch : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly object _gate = new();
    private readonly Dictionary<string, JsonObject> _templates = [];
    private readonly Dictionary<string, FakeIndex> _indices = [];
    private readonly Dictionary<string, string> _aliases = [];

    public List<string> Requests { get; } = [];

    /// <summary>Like http.max_content_length: larger request bodies are answered 413 (null: no limit).</summary>
    public int? MaxContentLength { get; set; }

    /// <summary>Test hook, asked under the lock for each "index" item of a _bulk: true answers that item 429
    /// es_rejected_execution_exception without writing it, as a busy shard does (the other items still apply).</summary>
    public Func<string, JsonObject, bool>? RejectItem { get; set; }

    /// <summary>False: _search sees only what a refresh made visible (_refresh, or a _bulk with refresh=true/wait_for),
    /// as in Elasticsearch; _mget stays real-time. True (default): _search sees every write at once.</summary>
    public bool SearchRealTime { get; set; } = true;

    private sealed class FakeIndex(JsonObject mappings, JsonObject analyzers)
    {
        public JsonObject Mappings { get; } = mappings;
        public JsonObject Analyzers { get; } = analyzers;
        public Dictionary<string, JsonObject> Documents { get; } = [];
        /// <summary>What _search sees when <see cref="SearchRealTime"/> is off: the documents at the last refresh.</summary>
        public Dictionary<string, JsonObject> Refreshed { get; set; } = [];
        public void Refresh() => Refreshed = new(Documents);
        /// <summary>The mapping's "_meta" (PUT _mapping replaces it; Elasticsearch keeps it with the index).</summary>
        public JsonObject? Meta { get; set; }
    }

    private FakeElasticsearch(WebApplication app) => _app = app;

    public Uri Url => new(_app.Urls.First());

    public IReadOnlyCollection<string> Indices { get { lock (_gate) return [.. _indices.Keys]; } }

    public JsonObject? Template(string name) { lock (_gate) return _templates.GetValueOrDefault(name); }

    public static async Task<FakeElasticsearch> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var fake = new FakeElasticsearch(app);
        app.Run(fake.HandleAsync);
        await app.StartAsync();
        return fake;
    }

    private async Task HandleAsync(HttpContext http)
    {
        var path = http.Request.Path.Value!.Trim('/');
        var method = http.Request.Method;
        string body;
        using (var reader = new StreamReader(http.Request.Body, Encoding.UTF8))
            body = await reader.ReadToEndAsync();
        lock (_gate)
            Requests.Add($"{method} /{path}{http.Request.QueryString}");
        var (status, answer) = MaxContentLength is { } limit && Encoding.UTF8.GetByteCount(body) > limit
            ? Error(HttpStatusCode.RequestEntityTooLarge, "content_too_long_exception", $"request body is too large ({Encoding.UTF8.GetByteCount(body)} > {limit} bytes)")
            : Route(method, path.Split('/'), body, http.Request.ContentType, http.Request.Query);
        http.Response.StatusCode = (int)status;
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(answer.ToJsonString());
    }

    private (HttpStatusCode, JsonNode) Route(string method, string[] segments, string body, string? contentType, IQueryCollection query)
    {
        lock (_gate)
        {
            try
            {
                return (method, segments) switch
                {
                    ("PUT", ["_index_template", var name]) => PutTemplate(name, JsonNode.Parse(body)!.AsObject()),
                    ("GET", ["_alias", var alias]) => GetAlias(alias),
                    ("POST", ["_aliases"]) => UpdateAliases(JsonNode.Parse(body)!["actions"]!.AsArray()),
                    ("PUT", [var index]) => CreateIndex(index, body.Length == 0 ? new JsonObject() : JsonNode.Parse(body)!.AsObject()),
                    ("DELETE", [var index]) => DeleteIndex(index),
                    ("POST", [var target, "_bulk"]) => contentType?.StartsWith("application/x-ndjson", StringComparison.Ordinal) == true
                        ? Bulk(Resolve(target, write: true), body, query["refresh"].ToString())
                        : Error(HttpStatusCode.NotAcceptable, "media_type_header_exception", "The bulk API needs Content-Type application/x-ndjson"),
                    ("POST", [var target, "_search"]) => Search(Resolve(target, write: false), JsonNode.Parse(body)!.AsObject()),
                    ("GET", [var target, "_count"]) => (HttpStatusCode.OK, new JsonObject { ["count"] = _indices[Resolve(target, write: false)].Documents.Count }),
                    ("GET", [var target, "_mapping"]) => GetMapping(Resolve(target, write: false)),
                    ("PUT", [var target, "_mapping"]) => PutMapping(Resolve(target, write: true), JsonNode.Parse(body)!.AsObject()),
                    ("POST", [var target, "_mget"]) => Mget(Resolve(target, write: false), JsonNode.Parse(body)!.AsObject(), query["_source_includes"].ToString()),
                    ("POST", [var target, "_refresh"]) => RefreshIndex(Resolve(target, write: false)),
                    _ => Error(HttpStatusCode.BadRequest, "illegal_argument_exception", $"unsupported by the fake: {method} /{string.Join('/', segments)}"),
                };
            }
            catch (MissingIndexException e)
            {
                return Error(HttpStatusCode.NotFound, "index_not_found_exception", $"no such index [{e.Message}]");
            }
        }
    }

    private sealed class MissingIndexException(string index) : Exception(index);

    private string Resolve(string target, bool write)
    {
        if (_aliases.TryGetValue(target, out var index) || _indices.ContainsKey(index = target))
            return _indices.ContainsKey(index) ? index : throw new MissingIndexException(target);
        throw new MissingIndexException(target);
    }

    private static JsonObject Shards() => new() { ["total"] = 1, ["successful"] = 1, ["failed"] = 0 };

    private static (HttpStatusCode, JsonNode) Error(HttpStatusCode status, string type, string reason) =>
        (status, new JsonObject { ["error"] = new JsonObject { ["root_cause"] = new JsonArray(new JsonObject { ["type"] = type, ["reason"] = reason }), ["type"] = type, ["reason"] = reason }, ["status"] = (int)status });

    private static (HttpStatusCode, JsonNode) Acknowledged() => (HttpStatusCode.OK, new JsonObject { ["acknowledged"] = true });

    private (HttpStatusCode, JsonNode) PutTemplate(string name, JsonObject template)
    {
        if (template["index_patterns"] is not JsonArray)
            return Error(HttpStatusCode.BadRequest, "action_request_validation_exception", "index patterns are missing");
        _templates[name] = template;
        return Acknowledged();
    }

    private (HttpStatusCode, JsonNode) GetAlias(string alias) =>
        _aliases.TryGetValue(alias, out var index)
            ? (HttpStatusCode.OK, new JsonObject { [index] = new JsonObject { ["aliases"] = new JsonObject { [alias] = new JsonObject() } } })
            : (HttpStatusCode.NotFound, new JsonObject { ["error"] = $"alias [{alias}] missing", ["status"] = 404 });

    private (HttpStatusCode, JsonNode) UpdateAliases(JsonArray actions)
    {
        var next = new Dictionary<string, string>(_aliases);
        foreach (var action in actions)
        {
            var (kind, target) = action!.AsObject().First();
            var index = target!["index"]!.GetValue<string>();
            var alias = target["alias"]!.GetValue<string>();
            if (!_indices.ContainsKey(index))
                return Error(HttpStatusCode.NotFound, "index_not_found_exception", $"no such index [{index}]");
            if (kind == "add")
                next[alias] = index;
            else if (kind == "remove" && next.GetValueOrDefault(alias) == index)
                next.Remove(alias);
            else
                return Error(HttpStatusCode.NotFound, "aliases_not_found_exception", $"aliases [{alias}] missing");
        }
        _aliases.Clear();
        foreach (var (alias, index) in next)
            _aliases[alias] = index;
        return Acknowledged();
    }

    private (HttpStatusCode, JsonNode) CreateIndex(string name, JsonObject request)
    {
        if (_indices.ContainsKey(name))
            return Error(HttpStatusCode.BadRequest, "resource_already_exists_exception", $"index [{name}] already exists");
        var template = _templates.Values.FirstOrDefault(t => t["index_patterns"]!.AsArray().Any(p => Matches(p!.GetValue<string>(), name)));
        var mappings = template?["template"]?["mappings"]?.AsObject() ?? new JsonObject { ["properties"] = new JsonObject() };
        var analyzers = template?["template"]?["settings"]?["analysis"]?["analyzer"]?.AsObject() ?? new JsonObject();
        foreach (var (field, mapping) in mappings["properties"]!.AsObject())
        {
            if (mapping!["analyzer"]?.GetValue<string>() is { } analyzer && !analyzers.ContainsKey(analyzer))
                return Error(HttpStatusCode.BadRequest, "mapper_parsing_exception", $"analyzer [{analyzer}] has not been configured in mappings (field {field})");
        }
        _indices[name] = new FakeIndex(mappings, analyzers);
        foreach (var (alias, _) in request["aliases"]?.AsObject() ?? [])
            _aliases[alias] = name;
        return (HttpStatusCode.OK, new JsonObject { ["acknowledged"] = true, ["shards_acknowledged"] = true, ["index"] = name });
    }

    private (HttpStatusCode, JsonNode) GetMapping(string name)
    {
        var mappings = _indices[name].Mappings.DeepClone().AsObject();
        if (_indices[name].Meta is { } meta)
            mappings["_meta"] = meta.DeepClone();
        return (HttpStatusCode.OK, new JsonObject { [name] = new JsonObject { ["mappings"] = mappings } });
    }

    /// <summary>Only "_meta" updates are needed (and accepted): the template's fields never change.</summary>
    private (HttpStatusCode, JsonNode) PutMapping(string name, JsonObject request)
    {
        if (request.Any(p => p.Key != "_meta") || request["_meta"] is not JsonObject meta)
            return Error(HttpStatusCode.BadRequest, "illegal_argument_exception", "unsupported by the fake: a mapping update other than _meta");
        _indices[name].Meta = meta.DeepClone().AsObject();
        return Acknowledged();
    }

    /// <summary>Test hook: refreshes every index, as Elasticsearch's refresh interval would.</summary>
    public void RefreshAll()
    {
        lock (_gate)
            foreach (var index in _indices.Values)
                index.Refresh();
    }

    /// <summary>Test hook: the stored documents (id and a copy of the source) of the index an alias names.</summary>
    public IReadOnlyDictionary<string, JsonObject> Documents(string alias)
    {
        lock (_gate)
            return _indices[_aliases.GetValueOrDefault(alias, alias)].Documents.ToDictionary(d => d.Key, d => d.Value.DeepClone().AsObject());
    }

    /// <summary>Test hook: replaces an index's "_meta" marker, as restoring an older snapshot would.</summary>
    public void SetMeta(string index, JsonObject? meta)
    {
        lock (_gate)
            _indices[_aliases.GetValueOrDefault(index, index)].Meta = meta;
    }

    private static bool Matches(string pattern, string name) =>
        pattern.EndsWith('*') ? name.StartsWith(pattern[..^1], StringComparison.Ordinal) : name == pattern;

    private (HttpStatusCode, JsonNode) DeleteIndex(string name)
    {
        if (!_indices.Remove(name))
            return Error(HttpStatusCode.NotFound, "index_not_found_exception", $"no such index [{name}]");
        foreach (var alias in _aliases.Where(a => a.Value == name).Select(a => a.Key).ToList())
            _aliases.Remove(alias);
        return Acknowledged();
    }

    private (HttpStatusCode, JsonNode) RefreshIndex(string indexName)
    {
        _indices[indexName].Refresh();
        return (HttpStatusCode.OK, new JsonObject { ["_shards"] = Shards() });
    }

    /// <summary>_mget by "ids" (real-time, like Elasticsearch's default), with an optional _source_includes list.</summary>
    private (HttpStatusCode, JsonNode) Mget(string indexName, JsonObject request, string sourceIncludes)
    {
        var index = _indices[indexName];
        var includes = sourceIncludes.Length == 0 ? null : sourceIncludes.Split(',').ToHashSet();
        var docs = new JsonArray();
        foreach (var id in request["ids"]!.AsArray().Select(n => n!.GetValue<string>()))
        {
            docs.Add(index.Documents.TryGetValue(id, out var source)
                ? new JsonObject { ["_index"] = indexName, ["_id"] = id, ["found"] = true,
                    ["_source"] = new JsonObject(source.Where(p => includes is null || includes.Contains(p.Key)).Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone()))) }
                : new JsonObject { ["_index"] = indexName, ["_id"] = id, ["found"] = false });
        }
        return (HttpStatusCode.OK, new JsonObject { ["docs"] = docs });
    }

    private (HttpStatusCode, JsonNode) Bulk(string indexName, string ndjson, string refresh)
    {
        var index = _indices[indexName];
        var items = new JsonArray();
        var errors = false;
        var lines = ndjson.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < lines.Length; i++)
        {
            var (action, meta) = JsonNode.Parse(lines[i])!.AsObject().First();
            var id = meta!["_id"]!.GetValue<string>();
            JsonObject result;
            if (action == "index")
            {
                var source = JsonNode.Parse(lines[++i])!.AsObject();
                var unknown = source.Select(p => p.Key).FirstOrDefault(k => !index.Mappings["properties"]!.AsObject().ContainsKey(k));
                if (RejectItem?.Invoke(id, source) == true)
                {
                    errors = true;
                    result = new JsonObject { ["_index"] = indexName, ["_id"] = id, ["status"] = 429,
                        ["error"] = new JsonObject { ["type"] = "es_rejected_execution_exception", ["reason"] = "rejected execution (queue capacity 200)" } };
                }
                else if (unknown is not null && index.Mappings["dynamic"]?.GetValue<string>() == "strict")
                {
                    errors = true;
                    result = new JsonObject { ["_index"] = indexName, ["_id"] = id, ["status"] = 400,
                        ["error"] = new JsonObject { ["type"] = "strict_dynamic_mapping_exception", ["reason"] = $"mapping set to strict, dynamic introduction of [{unknown}] is not allowed" } };
                }
                else
                {
                    var created = !index.Documents.ContainsKey(id);
                    index.Documents[id] = source;
                    result = new JsonObject { ["_index"] = indexName, ["_id"] = id, ["result"] = created ? "created" : "updated", ["status"] = created ? 201 : 200 };
                }
            }
            else if (action == "delete")
            {
                var found = index.Documents.Remove(id);
                result = new JsonObject { ["_index"] = indexName, ["_id"] = id, ["result"] = found ? "deleted" : "not_found", ["status"] = found ? 200 : 404 };
            }
            else
            {
                return Error(HttpStatusCode.BadRequest, "illegal_argument_exception", $"Malformed action/metadata line [{i + 1}], expected one of [create, delete, index, update] but found [{action}]");
            }
            items.Add(new JsonObject { [action] = result });
        }
        if (refresh is "true" or "wait_for")
            index.Refresh();
        return (HttpStatusCode.OK, new JsonObject { ["took"] = 1, ["errors"] = errors, ["items"] = items });
    }

    private (HttpStatusCode, JsonNode) Search(string indexName, JsonObject request)
    {
        var index = _indices[indexName];
        var boolQuery = request["query"]!["bool"]!;
        var scored = new List<(string Id, double Score, JsonObject Source)>();
        foreach (var (id, source) in SearchRealTime ? index.Documents : index.Refreshed)
        {
            if (!(boolQuery["filter"]?.AsArray() ?? []).All(f => PassesFilter(f!.AsObject(), source, id)))
                continue;
            if ((boolQuery["must_not"]?.AsArray() ?? []).Any(f => PassesFilter(f!.AsObject(), source, id)))
                continue;
            var score = 0.0;
            foreach (var should in boolQuery["should"]?.AsArray() ?? [])
                score += ScoreMultiMatch(index, should!["multi_match"]!, source);
            // A bool query without should clauses matches every document its filters pass (score 0), as in Elasticsearch.
            if (score > 0 || boolQuery["should"] is null)
                scored.Add((id, score, source));
        }
        var from = request["from"]?.GetValue<int>() ?? 0;
        var size = request["size"]?.GetValue<int>() ?? 10;
        var page = scored.OrderByDescending(s => s.Score).ThenBy(s => s.Id, StringComparer.Ordinal).Skip(from).Take(size);
        var includes = request["_source"]?.AsArray().Select(n => n!.GetValue<string>()).ToHashSet();
        var queryText = FirstQueryText(boolQuery);
        var hits = new JsonArray();
        foreach (var (id, score, source) in page)
        {
            var hit = new JsonObject
            {
                ["_index"] = indexName, ["_id"] = id, ["_score"] = score,
                ["_source"] = new JsonObject(source.Where(p => includes is null || includes.Contains(p.Key)).Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone()))),
            };
            var highlight = new JsonObject();
            foreach (var (field, settings) in request["highlight"]?["fields"]?.AsObject() ?? [])
            {
                if (source[field]?.GetValue<string>() is not { } text)
                    continue;
                var size2 = settings?["fragment_size"]?.GetValue<int>() ?? 100;
                var matcher = new TermMatcher(field, queryText);
                highlight[field] = new JsonArray(Snippets.Build(text, field, matcher, size2));
            }
            if (highlight.Count > 0)
                hit["highlight"] = highlight;
            hits.Add(hit);
        }
        return (HttpStatusCode.OK, new JsonObject
        {
            ["took"] = 1, ["timed_out"] = false, ["_shards"] = Shards(),
            ["hits"] = new JsonObject { ["total"] = new JsonObject { ["value"] = scored.Count, ["relation"] = "eq" }, ["max_score"] = scored.Count == 0 ? null : scored.Max(s => s.Score), ["hits"] = hits },
        });
    }

    private static string FirstQueryText(JsonNode boolQuery) =>
        boolQuery["should"]?.AsArray().Select(s => s!["multi_match"]?["query"]?.GetValue<string>()).FirstOrDefault(q => q is not null) ?? "";

    private static bool PassesFilter(JsonObject filter, JsonObject source, string? id = null)
    {
        var (kind, body) = filter.First();
        if (kind == "ids")
            return body!["values"]!.AsArray().Any(v => v!.GetValue<string>() == id);
        var (field, wanted) = body!.AsObject().First();
        var values = source[field] switch
        {
            JsonArray array => array.Select(v => v!.GetValue<string>()).ToList(),
            JsonValue value => [value.GetValue<string>()],
            _ => [],
        };
        return kind switch
        {
            "term" => values.Contains(wanted!.GetValue<string>()),
            "terms" => wanted!.AsArray().Any(w => values.Contains(w!.GetValue<string>())),
            _ => throw new NotSupportedException($"filter {kind}"),
        };
    }

    /// <summary>most_fields: per field, each query term found adds boost·(1 + ln tf), one found only within the AUTO
    /// edit distance adds a third of that; bool_prefix: every term but the last as such, the last as a prefix.</summary>
    private static double ScoreMultiMatch(FakeIndex index, JsonNode match, JsonObject source)
    {
        var text = match["query"]!.GetValue<string>();
        var type = match["type"]?.GetValue<string>() ?? "best_fields";
        var clauseBoost = match["boost"]?.GetValue<double>() ?? 1;
        var fuzzy = match["fuzziness"]?.GetValue<string>() == "AUTO";
        var prefixLength = match["prefix_length"]?.GetValue<int>() ?? 0;
        var score = 0.0;
        foreach (var spec in match["fields"]!.AsArray().Select(f => f!.GetValue<string>()))
        {
            var parts = spec.Split('^');
            var field = parts[0];
            var boost = parts.Length > 1 ? double.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) : 1;
            if (source[field]?.GetValue<string>() is not { } value)
                continue;
            var analyzer = index.Mappings["properties"]![field]?["analyzer"]?.GetValue<string>();
            var analysisField = analyzer == "crm_english" ? Analysis.BodyEn : Analysis.BodyZh;
            var docTerms = Analysis.Tokens(analysisField, value).GroupBy(t => t.Term).ToDictionary(g => g.Key, g => g.Count());
            var queryTerms = Analysis.Tokens(analysisField, text).Select(t => t.Term).Distinct().ToList();
            if (type == "bool_prefix")
            {
                for (var i = 0; i < queryTerms.Count; i++)
                {
                    var last = i == queryTerms.Count - 1;
                    if (last ? docTerms.Keys.Any(k => k.StartsWith(queryTerms[i], StringComparison.Ordinal)) : docTerms.ContainsKey(queryTerms[i]))
                        score += boost * clauseBoost;
                }
                continue;
            }
            foreach (var term in queryTerms)
            {
                if (docTerms.TryGetValue(term, out var tf))
                    score += boost * clauseBoost * (1 + Math.Log(tf));
                else if (fuzzy && Analysis.AutoEdits(term) > 0 && docTerms.Keys.Any(k =>
                    k.Length >= prefixLength && term.Length >= prefixLength && string.CompareOrdinal(k, 0, term, 0, prefixLength) == 0 &&
                    TermMatcher.WithinEdits(term, k, Analysis.AutoEdits(term))))
                    score += boost * clauseBoost / 3;
            }
        }
        return score;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
