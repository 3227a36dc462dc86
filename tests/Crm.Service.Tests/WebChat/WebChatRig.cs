using System.Net.Http.Json;
using System.Text.Json;
using Crm.Connectors.WebChat;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.WebChat;

/// <summary>The whole service in-process with a web chat widget "shop" that allows <see cref="Origin"/>; visitors connect
/// to the real hub over long polling (every poll passes the origin gate, like a browser's).</summary>
internal sealed class WebChatRig : IAsyncDisposable
{
    public const string Origin = "https://shop.example";
    public const string Widget = "shop";

    private readonly TempDirectory _data = new();

    private readonly IDictionary<string, string?>? _settings;
    private readonly Action<IServiceCollection>? _services;
    private readonly TempDirectory _secondNode = new();

    private WebChatRig(IDictionary<string, string?>? settings, Action<IServiceCollection>? services)
    {
        _settings = settings;
        _services = services;
        App = new CrmApp(_data.Path, settings, services: services);
    }

    public CrmApp App { get; private set; }

    /// <summary>Stops the app (as a crash or a deploy would) and starts another on the same data folder.</summary>
    public async Task RestartAsync()
    {
        await App.DisposeAsync();
        App = new CrmApp(_data.Path, _settings, services: _services);
        _ = App.Services;
    }

    /// <summary>A second node on the same store (its own Lucene folder: an index has one writer). With
    /// <paramref name="ownDataFolder"/>, everything but the database is its own (blobs, and the key folder of old).</summary>
    public CrmApp SecondNode(bool ownDataFolder = false)
    {
        var settings = new Dictionary<string, string?>(_settings ?? new Dictionary<string, string?>())
        {
            ["Search:LuceneDirectory"] = Path.Combine(_secondNode.Path, "search"),
            ["Search:RecordsLuceneDirectory"] = Path.Combine(_secondNode.Path, "search-records"),
        };
        if (ownDataFolder)
            settings["Store:DatabaseFile"] = Path.Combine(_data.Path, "crm.db");
        return new CrmApp(ownDataFolder ? _secondNode.Path : _data.Path, settings, services: _services);
    }

    public static async Task<WebChatRig> StartAsync(IDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null, object? widgetSettings = null)
    {
        var rig = new WebChatRig(settings, services);
        await rig.CreateWidgetAsync(Widget, widgetSettings ?? new { allowedOrigins = new[] { Origin }, title = new { en = "Shop help", zh = "商店客服" } });
        return rig;
    }

    public async Task CreateWidgetAsync(string id, object settings)
    {
        using var admin = App.Admin();
        var response = await admin.PutAsJsonAsync($"/api/v1/admin/channels/{id}", new { kind = "webchat", name = "Web chat " + id, settings });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>A client that sends <paramref name="origin"/> as a browser on that site would (null: no Origin).</summary>
    public HttpClient Page(string? origin = Origin, CrmApp? node = null)
    {
        var client = (node ?? App).CreateClient();
        if (origin is not null)
            client.DefaultRequestHeaders.Add("Origin", origin);
        return client;
    }

    public async Task<SessionResponse> StartSessionAsync(string? token = null, bool newConversation = false, string widget = Widget, CrmApp? node = null)
    {
        using var page = Page(node: node);
        var response = await page.PostAsJsonAsync($"/api/v1/webchat/{widget}/sessions", new { token, newConversation });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<SessionResponse>(CrmApp.Json))!;
    }

    public HubConnection Visitor(string token, string widget = Widget, string? origin = Origin, CrmApp? node = null)
    {
        var server = (node ?? App).Server;
        return new HubConnectionBuilder()
            .WithUrl(new Uri(server.BaseAddress, $"/hubs/visitor?widget={widget}"), options =>
            {
                options.HttpMessageHandlerFactory = _ => server.CreateHandler();
                options.Transports = HttpTransportType.LongPolling;
                options.AccessTokenProvider = () => Task.FromResult<string?>(token);
                if (origin is not null)
                    options.Headers["Origin"] = origin;
            })
            .Build();
    }

    public async Task<long> TicketOfAsync(Guid messageId) =>
        await App.QueryAsync(db => db.Messages.Where(m => m.Id == messageId).Select(m => m.TicketNumber).SingleAsync());

    public async Task<JsonElement> AgentReplyAsync(HttpClient agent, long ticket, string text)
    {
        var response = await agent.PostAsJsonAsync($"/api/v1/tickets/{ticket}/reply", new { text });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        _data.Dispose();
        _secondNode.Dispose();
    }
}
