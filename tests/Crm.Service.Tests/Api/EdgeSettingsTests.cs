using Crm.Service.Tests.Support;
using Microsoft.Extensions.Options;

namespace Crm.Service.Tests.Api;

public sealed class EdgeSettingsTests
{
    [Theory]
    [InlineData("Http:Limits:MaxConcurrentRequests", "0", "MaxConcurrentRequests")]
    [InlineData("Http:Limits:QueueLimit", "-1", "QueueLimit")]
    [InlineData("Http:Limits:RequestsPerSecondPerAddress", "0", "RequestsPerSecondPerAddress")]
    [InlineData("Http:Limits:BurstPerAddress", "0", "BurstPerAddress")]
    [InlineData("Http:KnownProxies:0", "not-an-address", "Http:KnownProxies")]
    [InlineData("Http:KnownNetworks:0", "10.0.0.0/99", "Http:KnownNetworks")]
    public async Task A_bad_edge_setting_stops_start_up_with_a_message_naming_it(string key, string value, string named)
    {
        using var data = new TempDirectory();
        await using var app = new CrmApp(data.Path, new Dictionary<string, string?> { [key] = value });

        var failure = Assert.ThrowsAny<Exception>(() => app.CreateClient());

        var validation = failure as OptionsValidationException ?? failure.InnerException as OptionsValidationException
            ?? (failure as AggregateException)?.InnerExceptions.OfType<OptionsValidationException>().FirstOrDefault();
        Assert.NotNull(validation);
        Assert.Contains(named, validation.Message, StringComparison.Ordinal);
    }
}
