using Crm.Connectors.Api;
using Crm.Connectors.Email;
using Crm.Service.Api;
using Crm.Service.Auth;
using Crm.Service.Hosting;
using Crm.Service.Infrastructure.Queries;

var builder = WebApplication.CreateBuilder(args);
builder.AddCrmSilo();
builder.AddApiChannel();
builder.AddEmailChannel();
builder.AddApiKeyAuthentication();
builder.AddCrmHttp();
builder.Services.AddCrmQueries();

var app = builder.Build();
app.UseCrmHttp();
app.MapCrmHealthChecks();
app.MapApiChannel();
app.MapAgentApi();
app.MapAdminApi();
app.Run();

/// <summary>Visible to WebApplicationFactory in the tests.</summary>
public partial class Program;
