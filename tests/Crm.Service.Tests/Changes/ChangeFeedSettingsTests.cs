using Crm.Service.Tests.Support;
using Microsoft.Extensions.Options;

namespace Crm.Service.Tests.Changes;

public sealed class ChangeFeedSettingsTests
{
    [Theory]
    [InlineData("ChangeFeed:BatchSize", "0", "BatchSize")]
    [InlineData("ChangeFeed:PollInterval", "00:00:00", "PollInterval")]
    [InlineData("ChangeFeed:Retention", "-00:00:01", "Retention")]
    public async Task A_bad_change_feed_setting_stops_start_up_with_a_message_naming_it(string key, string value, string named)
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
