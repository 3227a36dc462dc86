using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Crm.Service.Tests.Support;

/// <summary>A real HTTP server standing in for a bridge: records what it receives and answers what the test tells it to.</summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    public sealed record Received(byte[] Body, string? Timestamp, string? Signature, string? Delivery);

    public ConcurrentQueue<Received> Requests { get; } = new();

    /// <summary>Status codes to answer, in order; once used up, 200.</summary>
    public ConcurrentQueue<int> Answers { get; } = new();

    /// <summary>When set, every accepted delivery is answered with this messageId (a bridge that says "queued" to all).</summary>
    public string? FixedMessageId { get; set; }

    public string Url { get; }

    /// <summary>Answers 302 to <see cref="RedirectTargetUrl"/>.</summary>
    public string RedirectUrl => Url.Replace("/hook", "/redirect", StringComparison.Ordinal);

    public string RedirectTargetUrl => Url.Replace("/hook", "/redirect-target", StringComparison.Ordinal);

    /// <summary>Requests of any method that reached <see cref="RedirectTargetUrl"/>.</summary>
    public int RedirectTargetHits => _redirectTargetHits;

    /// <summary>Answers 200 with a JSON-looking body of <see cref="FloodBytes"/>, written slowly in small chunks.</summary>
    public string FloodUrl => Url.Replace("/hook", "/flood", StringComparison.Ordinal);

    public const int FloodBytes = 10 * 1024 * 1024;

    /// <summary>Bytes of the flood body handed to the connection so far; stops growing when the client hangs up.</summary>
    public long FloodBytesWritten => Interlocked.Read(ref _floodBytesWritten);

    private int _redirectTargetHits;
    private long _floodBytesWritten;

    private WebhookReceiver(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public static async Task<WebhookReceiver> StartAsync()
    {
        var port = FreePorts.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        var receiver = new WebhookReceiver(app, $"http://127.0.0.1:{port}/hook");
        app.MapPost("/hook", async (HttpContext http) =>
        {
            using var buffer = new MemoryStream();
            await http.Request.Body.CopyToAsync(buffer);
            receiver.Requests.Enqueue(new Received(buffer.ToArray(), http.Request.Headers["X-Crm-Timestamp"], http.Request.Headers["X-Crm-Signature"], http.Request.Headers["X-Crm-Delivery"]));
            var status = receiver.Answers.TryDequeue(out var answer) ? answer : 200;
            return status == 200 ? Results.Json(new { messageId = receiver.FixedMessageId ?? "bridge-" + receiver.Requests.Count }) : Results.StatusCode(status);
        });
        app.MapPost("/redirect", (HttpContext http) =>
        {
            http.Response.Headers.Location = receiver.RedirectTargetUrl;
            return Results.StatusCode(StatusCodes.Status302Found);
        });
        app.Map("/redirect-target", () =>
        {
            Interlocked.Increment(ref receiver._redirectTargetHits);
            return Results.Json(new { messageId = "followed-redirect" });
        });
        app.MapPost("/flood", async (HttpContext http) =>
        {
            http.Response.ContentType = "application/json";
            http.Response.ContentLength = FloodBytes;
            var chunk = new byte[16 * 1024];
            chunk.AsSpan().Fill((byte)' ');
            "{\"messageId\":\"flood\",\"padding\":\""u8.CopyTo(chunk);
            try
            {
                for (var written = 0; written < FloodBytes; written += chunk.Length)
                {
                    await http.Response.Body.WriteAsync(chunk, http.RequestAborted);
                    await http.Response.Body.FlushAsync(http.RequestAborted);
                    Interlocked.Add(ref receiver._floodBytesWritten, chunk.Length);
                    chunk.AsSpan().Fill((byte)'x');
                    await Task.Delay(20, http.RequestAborted);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException)
            {
                // The client hung up after reading what it wanted: the point of the test.
            }
        });
        await app.StartAsync();
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
