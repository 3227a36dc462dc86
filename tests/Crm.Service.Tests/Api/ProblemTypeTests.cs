using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Api;

/// <summary>Every 4xx is a problem with a <c>urn:crm:problem:</c> type, including the ones the framework writes by itself.</summary>
public sealed class ProblemTypeTests : AppTest
{
    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string type)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("urn:crm:problem:" + type, problem.GetProperty("type").GetString());
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("title").GetString()));
    }

    [Fact]
    public async Task Authentication_authorization_and_unknown_routes_answer_with_our_problem_types()
    {
        using var anonymous = App.CreateClient();
        using var agent = await App.AgentAsync();

        await AssertProblemAsync(await anonymous.GetAsync("/api/v1/tickets"), HttpStatusCode.Unauthorized, "unauthorized");
        await AssertProblemAsync(await agent.PostAsJsonAsync("/api/v1/admin/api-keys", new { name = "x", role = "admin" }), HttpStatusCode.Forbidden, "forbidden");
        await AssertProblemAsync(await agent.GetAsync("/api/v1/no-such-thing"), HttpStatusCode.NotFound, "not-found");
        await AssertProblemAsync(await agent.GetAsync("/api/v1/tickets/999999"), HttpStatusCode.NotFound, "not-found");
    }
}
