using System.Net;
using Crm.Service.Tests.Support;
using Microsoft.Extensions.Options;

namespace Crm.Service.Tests.Api;

public sealed class StartupTests
{
    [Theory]
    [InlineData("Store:MaxBatchSize", "0", "MaxBatchSize")]
    [InlineData("Tickets:ReopenWindow", "00:00:00", "ReopenWindow")]
    [InlineData("Channels:Api:MaxBodyBytes", "10", "MaxBodyBytes")]
    [InlineData("Cluster:SiloPort", "70000", "SiloPort")]
    [InlineData("Auth:BootstrapAdminKey", "short", "BootstrapAdminKey")]
    [InlineData("Http:Limits:MaxConcurrentRequests", "0", "MaxConcurrentRequests")]
    [InlineData("Http:Limits:QueueLimit", "-1", "QueueLimit")]
    [InlineData("Http:Limits:RequestsPerSecondPerAddress", "0", "RequestsPerSecondPerAddress")]
    [InlineData("Http:Limits:BurstPerAddress", "0", "BurstPerAddress")]
    [InlineData("Http:KnownProxies:0", "not-an-address", "Http:KnownProxies")]
    [InlineData("Http:KnownNetworks:0", "10.0.0.0/99", "Http:KnownNetworks")]
    [InlineData("ChangeFeed:BatchSize", "0", "BatchSize")]
    [InlineData("ChangeFeed:PollInterval", "00:00:00", "PollInterval")]
    [InlineData("ChangeFeed:Retention", "-00:00:01", "Retention")]
    [InlineData("ChangeFeed:Retention", "00:00:01", "ChangeFeed:Retention")]
    // Poll (5 s) + longest retry wait (5 min) leaves out the gathering delay and any margin (review LG7).
    [InlineData("ChangeFeed:Retention", "00:05:05", "ChangeFeed:GatherDelay")]
    [InlineData("Tickets:MaxReplyAttachmentBytes", "3221225472", "MaxReplyAttachmentBytes")] // EM4: 3 GiB
    public async Task A_bad_setting_stops_start_up_with_a_message_naming_it(string key, string value, string named)
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?> { [key] = value });

        var failure = Assert.ThrowsAny<Exception>(() => app.CreateClient());

        var validation = failure as OptionsValidationException ?? failure.InnerException as OptionsValidationException
            ?? (failure as AggregateException)?.InnerExceptions.OfType<OptionsValidationException>().FirstOrDefault();
        Assert.NotNull(validation);
        Assert.Contains(named, validation.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_endpoints_answer_once_the_store_and_silo_are_up()
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path);
        using var client = app.CreateClient();

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/ready")).StatusCode);
        Assert.True(File.Exists(Path.Combine(data.Path, "crm.db")));
        Assert.True(Directory.Exists(Path.Combine(data.Path, "blobs")));
    }
}
