using Crm.Connectors.Api;
using Crm.Connectors.Email;
using Crm.Connectors.WebChat;
using Crm.Connectors.Telegram;
using Crm.Service.Api;
using Crm.Service.Auth;
using Crm.Service.AgentConsole;
using Crm.Service.Hosting;
using Crm.Service.Infrastructure.Queries;
using Crm.Service.KnowledgeBase;

var builder = WebApplication.CreateBuilder(args);
builder.AddCrmSilo();
builder.AddApiChannel();
builder.AddEmailChannel();
builder.AddWebChatChannel();
builder.AddTelegramChannel();
builder.AddApiKeyAuthentication();
builder.AddConsoleIdentity();
builder.Services.AddSingleton<Crm.Connectors.Abstractions.IAgentAddresses, ConsoleAgentAddresses>();
builder.AddCrmHttp();
builder.Services.AddUploadLimits();
builder.Services.AddCrmQueries();
builder.AddAgentConsole();
builder.AddKnowledgeBase();

var app = builder.Build();
if (await app.RunConsoleCommandAsync() || await app.RunKnowledgeBaseCommandAsync(args))
    return;
app.UseCrmHttp();
app.UseAgentConsole();
app.MapCrmHealthChecks();
app.MapApiChannel();
app.MapWebChat();
app.MapTelegramChannel();
app.MapAgentApi();
app.MapAdminApi();
app.MapEmailAdminApi(ApiKeyAuthenticationExtensions.AdminPolicy, ApiKeyAuthenticationExtensions.RateLimitPolicy);
app.MapTeamsApi();
app.MapRoutingApi();
app.MapCustomerEventsApi();
app.MapTicketLinksApi();
app.MapCallsApi();
app.MapRepliesApi();
app.MapKnowledgeBaseApi();
app.MapAgentConsole();
app.Run();

/// <summary>Visible to WebApplicationFactory in the tests.</summary>
public partial class Program;
