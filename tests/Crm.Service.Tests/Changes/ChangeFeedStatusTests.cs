using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Changes;

/// <summary>A consumer that keeps failing is visible: readiness says Degraded (and still serves), the admin API names it.</summary>
public sealed class ChangeFeedStatusTests
{
    [Fact]
    public async Task A_consumer_that_keeps_failing_degrades_readiness_and_shows_its_error_and_lag_to_admins()
    {
        using var data = new TempDirectory();
        // The journal tap is a real consumer; pointed at a folder, every write of it fails.
        var journal = Directory.CreateDirectory(Path.Combine(data.Path, "journal-is-a-folder")).FullName;
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?>
        {
            ["ChangeFeed:JournalFile"] = journal,
            ["ChangeFeed:DegradedAfter"] = "00:00:00",
            ["ChangeFeed:FirstRetryDelay"] = "00:00:00.050",
            ["ChangeFeed:MaxRetryDelay"] = "00:00:00.100",
        });
        using var admin = app.Admin();
        // Something to hand: a new channel account is a change.
        await app.CreateApiChannelAsync();
        using var client = app.CreateClient();

        var ready = await Eventually.WaitForAsync(() => client.GetAsync("/health/ready"),
            r => r.Content.ReadAsStringAsync().Result == "Degraded", what: "readiness to report the failing consumer");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);

        var feed = await admin.GetFromJsonAsync<JsonElement>("/api/v1/admin/change-feed");
        var tap = feed.GetProperty("consumers").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "journal");
        Assert.True(tap.GetProperty("failures").GetInt32() > 0);
        Assert.Contains("journal-is-a-folder", tap.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        Assert.True(tap.GetProperty("lag").GetInt64() > 0);
        Assert.True(feed.GetProperty("head").GetInt64() > 0);
    }

    [Fact]
    public async Task Readiness_is_healthy_while_every_consumer_keeps_up()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?> { ["ChangeFeed:DegradedAfter"] = "00:00:00" });
        using var client = app.CreateClient();
        var ready = await client.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("Healthy", await ready.Content.ReadAsStringAsync());
    }
}
