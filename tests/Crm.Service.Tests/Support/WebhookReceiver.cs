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

    public string Url { get; }

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
            return status == 200 ? Results.Json(new { messageId = "bridge-" + receiver.Requests.Count }) : Results.StatusCode(status);
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
