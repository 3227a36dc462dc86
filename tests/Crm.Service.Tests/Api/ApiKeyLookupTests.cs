using System.Net;
using System.Net.Http.Json;
using Crm.Service.Auth;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Api;

public sealed class ApiKeyLookupTests : AppTest
{
    /// <summary>The real context factory, counting the contexts it hands out (one per query).</summary>
    private sealed class CountingContexts(IDbContextFactory<CrmDbContext> inner) : IDbContextFactory<CrmDbContext>
    {
        public int Created;

        public CrmDbContext CreateDbContext()
        {
            Interlocked.Increment(ref Created);
            return inner.CreateDbContext();
        }

        public Task<CrmDbContext> CreateDbContextAsync(CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Created);
            return inner.CreateDbContextAsync(cancellationToken);
        }
    }

    [Fact]
    public async Task Made_up_keys_cost_no_database_query()
    {
        var contexts = new CountingContexts(App.Services.GetRequiredService<IDbContextFactory<CrmDbContext>>());
        var directory = new ApiKeyDirectory(contexts, App.Services.GetRequiredService<StoreInitializer>(), TimeProvider.System);

        for (var i = 0; i < 1_000; i++)
            Assert.Null(await directory.FindAsync($"crm_made-up-{i}", CancellationToken.None));

        Assert.InRange(contexts.Created, 1, 2);
        Assert.NotNull(await directory.FindAsync(CrmApp.AdminKey, CancellationToken.None));
    }

    [Fact]
    public async Task A_revoked_key_stops_working_at_once_on_the_node_that_revoked_it()
    {
        using var admin = App.Admin();
        var created = await (await admin.PostAsJsonAsync("/api/v1/admin/api-keys", new { name = "temp", role = "agent" })).Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        using var agent = App.CreateClient();
        agent.DefaultRequestHeaders.Add("X-Api-Key", created.GetProperty("key").GetString());
        Assert.Equal(HttpStatusCode.OK, (await agent.GetAsync("/api/v1/tickets")).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/admin/api-keys/{created.GetProperty("id").GetGuid()}")).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await agent.GetAsync("/api/v1/tickets")).StatusCode);
    }
}
