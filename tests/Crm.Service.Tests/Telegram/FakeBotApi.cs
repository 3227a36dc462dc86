using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Crm.Service.Tests.Telegram;

/// <summary>
/// Telegram's Bot API on 127.0.0.1, the subset the connector uses, behaving like the real one: /bot{token}/{method}
/// with JSON or multipart arguments, {"ok":false,"error_code","description","parameters"} errors, getUpdates ordered by
/// update_id with confirmation by offset and a long-poll timeout, 409 while a webhook is set or when a newer getUpdates
/// ends a waiting one, getFile plus
/// /file/bot{token}/{path} downloads with the 20 MB limit, 429 with retry_after on demand, 403 for chats that blocked
/// the bot, and HTML parse mode that refuses unescaped markup like Telegram does.
/// </summary>
internal sealed class FakeBotApi : IAsyncDisposable
{
    public const long DownloadLimit = 20L * 1024 * 1024;

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, Bot> _bots = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (string Path, byte[] Content, long Size)> _files = new(StringComparer.Ordinal);

    public string BaseUrl { get; }

    /// <summary>File downloads (/file/bot…/path) served, by path.</summary>
    public ConcurrentDictionary<string, int> Downloads { get; } = new(StringComparer.Ordinal);

    /// <summary>Paths whose download sends the headers and a few bytes, then stalls (a connection that hangs mid-body).</summary>
    public ConcurrentDictionary<string, bool> StalledDownloads { get; } = new(StringComparer.Ordinal);

    private FakeBotApi(WebApplication app, string baseUrl)
    {
        _app = app;
        BaseUrl = baseUrl;
    }

    public sealed record Sent(string Method, long ChatId, string? Text, string? ParseMode, string? FileName, byte[]? File, int MessageId);

    public sealed class Bot(string token, long id, string username)
    {
        private readonly List<(int Id, string Json)> _updates = [];
        private int _nextUpdateId = 100;
        private int _nextMessageId = 5000;
        private SemaphoreSlim _arrived = new(0);

        public string Token { get; } = token;
        public long Id { get; } = id;
        public string Username { get; } = username;
        /// <summary>The highest update_id confirmed by a getUpdates offset.</summary>
        public int Confirmed { get; private set; }
        public string? WebhookUrl { get; set; }
        public string? WebhookSecret { get; set; }
        public int? WebhookMaxConnections { get; set; }
        /// <summary>What getWebhookInfo reports as Telegram's last delivery error (dated when it is asked).</summary>
        public string? WebhookError { get; set; }
        public int PendingUpdates { get; set; }
        /// <summary>sendPhoto answers 400 PHOTO_INVALID_DIMENSIONS (as Telegram does for a 1×8000 image).</summary>
        public bool RefusePhotos { get; set; }
        /// <summary>Largest upload accepted (Telegram's multipart limit, 50 MB); larger ones answer 413.</summary>
        public long UploadLimit { get; set; } = 50L * 1024 * 1024;
        /// <summary>sendDocument answers 400.</summary>
        public bool RefuseDocuments { get; set; }
        /// <summary>When set, sendMessage answers 400 with this description (e.g. our own request Telegram cannot parse).</summary>
        public string? RefuseMessagesWith { get; set; }
        public ConcurrentQueue<string> Calls { get; } = new();
        public ConcurrentQueue<Sent> Sent { get; } = new();
        public ConcurrentQueue<string> AnsweredCallbacks { get; } = new();
        public ConcurrentDictionary<long, bool> Blocked { get; } = new();
        /// <summary>Chats Telegram does not know (deleted, or never started): sends answer 400 "chat not found".</summary>
        public ConcurrentDictionary<long, bool> Missing { get; } = new();
        /// <summary>How many times each update_id was handed out by getUpdates.</summary>
        public ConcurrentDictionary<int, int> Deliveries { get; } = new();
        /// <summary>getUpdates calls ended with 409 because another getUpdates of the same bot came in meanwhile (two readers).</summary>
        public int Conflicts => _conflicts;
        private int _conflicts;
        private CancellationTokenSource? _polling;

        /// <summary>Like Telegram: a getUpdates ends the one still waiting, which answers 409.</summary>
        public async Task<List<string>?> PollAsync(int? offset, int limit, int timeoutSeconds, CancellationToken aborted)
        {
            using var mine = CancellationTokenSource.CreateLinkedTokenSource(aborted);
            var previous = Interlocked.Exchange(ref _polling, mine);
            try
            {
                previous?.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
            try
            {
                var updates = await TakeAsync(offset, limit, timeoutSeconds, mine.Token);
                if (mine.IsCancellationRequested && !aborted.IsCancellationRequested)
                {
                    Interlocked.Increment(ref _conflicts);
                    return null;
                }
                return updates;
            }
            finally
            {
                Interlocked.CompareExchange(ref _polling, null, mine);
            }
        }
        /// <summary>From this send on (1 = the first message sent), Telegram takes the message but holds its answer
        /// until the client gives up: a stop while the answer is on the way.</summary>
        public int? HoldAnswersFrom { get; set; }

        /// <summary>At this send (1 = the first message sent), Telegram takes the message and the connection is then
        /// reset before its answer: a network failure after the request went out (review EO2).</summary>
        public int? ResetAnswerAt { get; set; }

        /// <summary>The next send calls answer 429 with this retry_after, one per entry (0: that call goes through).</summary>
        public ConcurrentQueue<int> FloodRetryAfter { get; } = new();

        /// <summary>Queues an update: <paramref name="body"/> is an update without its update_id, which is assigned here
        /// (Telegram's own numbering); returns it.</summary>
        public int Enqueue(JsonObject body)
        {
            lock (_updates)
            {
                var id = ++_nextUpdateId;
                var update = new JsonObject { ["update_id"] = id };
                foreach (var (key, value) in body.ToList())
                {
                    if (key == "update_id")
                        continue;
                    body.Remove(key);
                    update[key] = value;
                }
                _updates.Add((id, update.ToJsonString()));
                _arrived.Release();
                return id;
            }
        }

        /// <summary>Forgets confirmations: what was confirmed comes again under new update_ids (like an offset reset).</summary>
        public void Redeliver(IEnumerable<int> updateIds)
        {
            List<string> again;
            lock (_updates)
                again = [.. _updates.Where(u => updateIds.Contains(u.Id)).Select(u => u.Json)];
            foreach (var json in again)
                Enqueue(JsonNode.Parse(json)!.AsObject());
        }

        public int NextMessageId() => Interlocked.Increment(ref _nextMessageId);

        public async Task<List<string>> TakeAsync(int? offset, int limit, int timeoutSeconds, CancellationToken cancellationToken)
        {
            var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
            while (true)
            {
                List<(int Id, string Json)> due;
                lock (_updates)
                {
                    if (offset is { } o and > 0)
                        Confirmed = Math.Max(Confirmed, o - 1);
                    due = [.. _updates.Where(u => u.Id > Confirmed && (offset is null or <= 0 || u.Id >= offset)).OrderBy(u => u.Id).Take(limit)];
                }
                var left = deadline - DateTime.UtcNow;
                if (due.Count > 0 || left <= TimeSpan.Zero)
                {
                    foreach (var (id, _) in due)
                        Deliveries.AddOrUpdate(id, 1, (_, n) => n + 1);
                    return [.. due.Select(u => u.Json)];
                }
                try
                {
                    await _arrived.WaitAsync(left, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return [];
                }
            }
        }
    }

    public static async Task<FakeBotApi> StartAsync()
    {
        var port = FreePorts.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 64 * 1024 * 1024);
        var app = builder.Build();
        var api = new FakeBotApi(app, $"http://127.0.0.1:{port}");
        app.MapPost("/bot{token}/{method}", api.HandleAsync);
        app.MapGet("/bot{token}/{method}", api.HandleAsync);
        app.MapGet("/file/bot{token}/{**path}", async (string token, string path, HttpContext http) =>
        {
            if (!api._bots.ContainsKey(token))
                return Results.StatusCode(401);
            if (api._files.Values.FirstOrDefault(f => f.Path == path) is not { Path: not null } file)
                return Results.NotFound();
            api.Downloads.AddOrUpdate(path, 1, (_, n) => n + 1);
            if (api.StalledDownloads.ContainsKey(path))
            {
                http.Response.ContentLength = file.Size;
                await http.Response.Body.WriteAsync(file.Content.AsMemory(0, Math.Min(4, file.Content.Length)), http.RequestAborted);
                await http.Response.Body.FlushAsync(http.RequestAborted);
                try
                {
                    await Task.Delay(Timeout.Infinite, http.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                }
                return Results.Empty;
            }
            return Results.Bytes(file.Content, "application/octet-stream");
        });
        await app.StartAsync();
        return api;
    }

    public Bot AddBot(string token, long id, string username) => _bots[token] = new Bot(token, id, username);

    public Bot BotOf(string token) => _bots[token];

    /// <summary>Revokes a token (as @BotFather's /revoke does): every call with it answers 401 Unauthorized.</summary>
    public void RevokeBot(string token) => _bots.TryRemove(token, out _);

    /// <summary>A file Telegram holds; <paramref name="size"/> may claim more than <paramref name="content"/> (a large file
    /// whose bytes the test does not need).</summary>
    public void AddFile(string fileId, string path, byte[] content, long? size = null) => _files[fileId] = (path, content, size ?? content.LongLength);

    private static IResult Error(int code, string description, int? retryAfter = null)
    {
        var body = new JsonObject { ["ok"] = false, ["error_code"] = code, ["description"] = description };
        if (retryAfter is { } seconds)
            body["parameters"] = new JsonObject { ["retry_after"] = seconds };
        return Results.Content(body.ToJsonString(), "application/json", statusCode: code);
    }

    private static IResult Ok(JsonNode? result) => Results.Content(new JsonObject { ["ok"] = true, ["result"] = result }.ToJsonString(), "application/json");

    private async Task<IResult> HandleAsync(string token, string method, HttpContext http)
    {
        if (!_bots.TryGetValue(token, out var bot))
            return Error(401, "Unauthorized");
        var (args, files) = await ReadArgumentsAsync(http.Request);
        bot.Calls.Enqueue(method);
        switch (method)
        {
            case "getMe":
                return Ok(new JsonObject { ["id"] = bot.Id, ["is_bot"] = true, ["first_name"] = bot.Username, ["username"] = bot.Username });
            case "setWebhook":
                bot.WebhookUrl = Str(args, "url");
                bot.WebhookSecret = Str(args, "secret_token");
                bot.WebhookMaxConnections = Int(args, "max_connections");
                return Ok(true);
            case "getWebhookInfo":
                var info = new JsonObject { ["url"] = bot.WebhookUrl ?? "", ["has_custom_certificate"] = false, ["pending_update_count"] = bot.PendingUpdates };
                if (bot.WebhookError is { } webhookError)
                {
                    info["last_error_date"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                    info["last_error_message"] = webhookError;
                }
                return Ok(info);
            case "deleteWebhook":
                bot.WebhookUrl = null;
                bot.WebhookSecret = null;
                return Ok(true);
            case "getUpdates":
                if (bot.WebhookUrl is not null)
                    return Error(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
                if (await bot.PollAsync(Int(args, "offset"), Int(args, "limit") ?? 100, Int(args, "timeout") ?? 0, http.RequestAborted) is not { } updates)
                    return Error(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running");
                return Results.Content($"{{\"ok\":true,\"result\":[{string.Join(',', updates)}]}}", "application/json");
            case "getFile":
                if (Str(args, "file_id") is not { } fileId || !_files.TryGetValue(fileId, out var file))
                    return Error(400, "Bad Request: invalid file_id");
                if (file.Size > DownloadLimit)
                    return Error(400, "Bad Request: file is too big");
                return Ok(new JsonObject { ["file_id"] = fileId, ["file_unique_id"] = "u" + fileId, ["file_size"] = file.Size, ["file_path"] = file.Path });
            case "answerCallbackQuery":
                bot.AnsweredCallbacks.Enqueue(Str(args, "callback_query_id") ?? "");
                return Ok(true);
            case "sendMessage" or "sendPhoto" or "sendDocument":
                var chat = long.Parse(Str(args, "chat_id") ?? "0", CultureInfo.InvariantCulture);
                if (bot.FloodRetryAfter.TryDequeue(out var retryAfter) && retryAfter > 0)
                    return Error(429, $"Too Many Requests: retry after {retryAfter}", retryAfter);
                if (bot.Blocked.ContainsKey(chat))
                    return Error(403, "Forbidden: bot was blocked by the user");
                if (bot.Missing.ContainsKey(chat))
                    return Error(400, "Bad Request: chat not found");
                if (method == "sendMessage" && bot.RefuseMessagesWith is { } refusal)
                    return Error(400, refusal);
                if (method == "sendPhoto" && bot.RefusePhotos)
                    return Error(400, "Bad Request: PHOTO_INVALID_DIMENSIONS");
                if (method == "sendDocument" && bot.RefuseDocuments)
                    return Error(400, "Bad Request: file must be non-empty");
                // Like Telegram: an upload over the multipart limit is refused by the server in front of the API, and a
                // photo over 10 MB by sendPhoto.
                if (files.Values.Any(f => f.Content.LongLength > bot.UploadLimit))
                    return Error(413, "Request Entity Too Large");
                if (method == "sendPhoto" && files.Values.Any(f => f.Content.LongLength > 10L * 1024 * 1024))
                    return Error(400, "Bad Request: PHOTO_SAVE_FILE_INVALID");
                var text = Str(args, "text");
                var parseMode = Str(args, "parse_mode");
                if (method == "sendMessage")
                {
                    if (string.IsNullOrEmpty(text))
                        return Error(400, "Bad Request: message text is empty");
                    var visible = text;
                    if (string.Equals(parseMode, "HTML", StringComparison.OrdinalIgnoreCase))
                    {
                        if (ParseHtml(text) is not { } plain)
                            return Error(400, "Bad Request: can't parse entities: Unsupported start tag or unmatched '&'");
                        visible = plain;
                    }
                    if (visible.Length > 4096)
                        return Error(400, "Bad Request: message is too long");
                }
                var part = method == "sendPhoto" ? "photo" : "document";
                // The file is the part named after the argument, or the one the argument points at ("attach://name").
                if (!files.TryGetValue(part, out var upload) && Str(args, part) is { } reference && reference.StartsWith("attach://", StringComparison.Ordinal))
                    files.TryGetValue(reference["attach://".Length..], out upload);
                var id = bot.NextMessageId();
                bot.Sent.Enqueue(new Sent(method, chat, text, parseMode, upload.Name, upload.Content, id));
                if (bot.ResetAnswerAt is { } reset && bot.Sent.Count == reset)
                {
                    http.Abort();
                    return Results.Empty;
                }
                if (bot.HoldAnswersFrom is { } hold && bot.Sent.Count >= hold)
                {
                    try
                    {
                        await Task.Delay(Timeout.Infinite, http.RequestAborted);
                    }
                    catch (OperationCanceledException)
                    {
                        return Results.Empty;
                    }
                }
                var message = new JsonObject
                {
                    ["message_id"] = id,
                    ["date"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                    ["chat"] = new JsonObject { ["id"] = chat, ["type"] = "private" },
                    ["from"] = new JsonObject { ["id"] = bot.Id, ["is_bot"] = true, ["first_name"] = bot.Username },
                };
                if (text is not null)
                    message["text"] = ParseHtml(text);
                if (method == "sendDocument")
                    message["document"] = new JsonObject { ["file_id"] = "sent-" + id, ["file_unique_id"] = "s" + id, ["file_name"] = upload.Name };
                if (method == "sendPhoto")
                    message["photo"] = new JsonArray(new JsonObject { ["file_id"] = "sent-" + id, ["file_unique_id"] = "s" + id, ["width"] = 1, ["height"] = 1 });
                return Ok(message);
            default:
                return Error(404, "Not Found: method not found");
        }
    }

    /// <summary>The visible text of an HTML-mode message, or null where Telegram would refuse it: this connector sends
    /// no tags, so any '&lt;' or an '&amp;' that starts no entity is markup it failed to escape.</summary>
    internal static string? ParseHtml(string html)
    {
        if (html.Contains('<', StringComparison.Ordinal) || html.Contains('>', StringComparison.Ordinal))
            return null;
        var result = new System.Text.StringBuilder(html.Length);
        for (var i = 0; i < html.Length; i++)
        {
            if (html[i] != '&')
            {
                result.Append(html[i]);
                continue;
            }
            var end = html.IndexOf(';', i);
            if (end < 0)
                return null;
            switch (html[i..(end + 1)])
            {
                case "&lt;": result.Append('<'); break;
                case "&gt;": result.Append('>'); break;
                case "&amp;": result.Append('&'); break;
                case "&quot;": result.Append('"'); break;
                default: return null;
            }
            i = end;
        }
        return result.ToString();
    }

    private static async Task<(Dictionary<string, string> Args, Dictionary<string, (string Name, byte[] Content)> Files)> ReadArgumentsAsync(HttpRequest request)
    {
        var args = new Dictionary<string, string>(StringComparer.Ordinal);
        var files = new Dictionary<string, (string, byte[])>(StringComparer.Ordinal);
        if (request.HasFormContentType)
        {
            var form = await request.ReadFormAsync();
            foreach (var (key, value) in form)
                args[key] = value.ToString();
            foreach (var file in form.Files)
            {
                using var buffer = new MemoryStream();
                await file.CopyToAsync(buffer);
                files[file.Name] = (file.FileName, buffer.ToArray());
            }
        }
        else if (request.ContentLength is not 0)
        {
            using var document = await JsonDocument.ParseAsync(request.Body);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
                foreach (var property in document.RootElement.EnumerateObject())
                    args[property.Name] = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString()! : property.Value.GetRawText();
        }
        foreach (var (key, value) in request.Query)
            args.TryAdd(key, value.ToString());
        return (args, files);
    }

    private static string? Str(Dictionary<string, string> args, string name) => args.GetValueOrDefault(name);

    private static int? Int(Dictionary<string, string> args, string name) =>
        int.TryParse(args.GetValueOrDefault(name), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : null;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
