using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Api;

public sealed class BootstrapKeyRevocationTests
{
    [Fact]
    public async Task A_revoked_bootstrap_key_still_configured_does_not_stop_the_next_start_and_stays_revoked()
    {
        using var data = new TempDirectory();
        await using (var first = new CrmApp(data.Path))
        {
            using var bootstrap = first.Admin();
            var bootstrapId = (await bootstrap.GetFromJsonAsync<JsonElement>("/api/v1/admin/api-keys")).EnumerateArray()
                .Single(k => k.GetProperty("name").GetString() == "bootstrap-admin").GetProperty("id").GetGuid();
            var other = await (await bootstrap.PostAsJsonAsync("/api/v1/admin/api-keys", new { name = "second-admin", role = "admin" })).Content.ReadFromJsonAsync<JsonElement>();
            using var secondAdmin = first.CreateClient();
            secondAdmin.DefaultRequestHeaders.Add("X-Api-Key", other.GetProperty("key").GetString());

            Assert.Equal(HttpStatusCode.NoContent, (await secondAdmin.DeleteAsync($"/api/v1/admin/api-keys/{bootstrapId}")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await bootstrap.GetAsync("/api/v1/admin/api-keys")).StatusCode);
        }

        // Same data folder, Auth:BootstrapAdminKey still set by CrmApp.
        await using var second = new CrmApp(data.Path);
        using var client = second.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/ready")).StatusCode);
        using var revoked = second.Admin();
        Assert.Equal(HttpStatusCode.Unauthorized, (await revoked.GetAsync("/api/v1/admin/api-keys")).StatusCode);
    }
}
