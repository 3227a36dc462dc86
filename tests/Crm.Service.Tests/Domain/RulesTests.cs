using Crm.Connectors.Api.Http;
using Crm.Service.Contracts;
using Crm.Service.Grains;
using Crm.Service.Infrastructure.Outbox;

namespace Crm.Service.Tests.Domain;

public sealed class RulesTests
{
    private static readonly byte[] Body = """{"messageId":"1"}"""u8.ToArray();

    [Fact]
    public void A_signature_made_with_the_secret_verifies()
    {
        var now = DateTimeOffset.UtcNow;
        var signature = RequestSignature.Compute("secret", now.ToUnixTimeSeconds(), Body);
        Assert.Equal(RequestSignature.Outcome.Valid, RequestSignature.Verify("secret", now.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture), signature, Body, now, TimeSpan.FromMinutes(5)));
    }

    [Fact]
    public void A_signature_is_refused_for_another_secret_another_body_or_an_old_timestamp()
    {
        var now = DateTimeOffset.UtcNow;
        var ts = now.ToUnixTimeSeconds();
        var stamp = ts.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var signature = RequestSignature.Compute("secret", ts, Body);
        Assert.Equal(RequestSignature.Outcome.Mismatch, RequestSignature.Verify("other", stamp, signature, Body, now, TimeSpan.FromMinutes(5)));
        Assert.Equal(RequestSignature.Outcome.Mismatch, RequestSignature.Verify("secret", stamp, signature, """{"messageId":"2"}"""u8, now, TimeSpan.FromMinutes(5)));
        Assert.Equal(RequestSignature.Outcome.Stale, RequestSignature.Verify("secret", stamp, signature, Body, now.AddMinutes(6), TimeSpan.FromMinutes(5)));
        Assert.Equal(RequestSignature.Outcome.Missing, RequestSignature.Verify("secret", null, signature, Body, now, TimeSpan.FromMinutes(5)));
        Assert.Equal(RequestSignature.Outcome.Malformed, RequestSignature.Verify("secret", "yesterday", signature, Body, now, TimeSpan.FromMinutes(5)));
    }

    [Theory]
    [InlineData("Order #42 is late", null, "Order #42 is late")]
    [InlineData(null, "\n\n  First line  \nsecond", "First line")]
    [InlineData("  ", "  ", "(no subject)")]
    [InlineData(null, null, "(no subject)")]
    [InlineData("tabs\tand\n newlines", null, "tabs and newlines")]
    public void A_new_ticket_takes_the_subject_or_else_the_first_line(string? subject, string? text, string expected) =>
        Assert.Equal(expected, TextRules.SubjectFor(subject, text));

    [Fact]
    public void Tags_are_lower_case_unique_and_sorted() =>
        Assert.Equal(["billing", "vip"], TextRules.NormalizeTags(["VIP", " billing ", "vip", ""]));

    [Theory]
    [InlineData(DeliveryStatus.Queued, DeliveryStatus.Sent, true)]
    [InlineData(DeliveryStatus.Sent, DeliveryStatus.Delivered, true)]
    [InlineData(DeliveryStatus.Queued, DeliveryStatus.Delivered, true)]
    [InlineData(DeliveryStatus.Queued, DeliveryStatus.Queued, true)]
    [InlineData(DeliveryStatus.Queued, DeliveryStatus.Failed, true)]
    [InlineData(DeliveryStatus.Sent, DeliveryStatus.Failed, true)]
    [InlineData(DeliveryStatus.Sent, DeliveryStatus.Sent, false)]
    [InlineData(DeliveryStatus.Failed, DeliveryStatus.Queued, false)]
    [InlineData(DeliveryStatus.Failed, DeliveryStatus.Sent, false)]
    [InlineData(DeliveryStatus.Failed, DeliveryStatus.Delivered, false)]
    [InlineData(DeliveryStatus.Delivered, DeliveryStatus.Sent, false)]
    [InlineData(DeliveryStatus.Delivered, DeliveryStatus.Failed, false)]
    [InlineData(DeliveryStatus.Delivered, DeliveryStatus.Delivered, false)]
    [InlineData(DeliveryStatus.Sent, DeliveryStatus.Queued, false)]
    [InlineData(DeliveryStatus.Queued, DeliveryStatus.None, false)]
    public void Delivery_status_only_moves_forward(DeliveryStatus from, DeliveryStatus to, bool allowed) =>
        Assert.Equal(allowed, MessageDeliveryGrain.IsAllowed(from, to));

    [Fact]
    public void Outbox_retries_back_off_exponentially_up_to_the_cap()
    {
        var options = new OutboxOptions { FirstRetryDelay = TimeSpan.FromSeconds(2), MaxRetryDelay = TimeSpan.FromMinutes(1) };
        var first = options.DelayAfter(1);
        var fourth = options.DelayAfter(4);
        var late = options.DelayAfter(40);
        Assert.InRange(first.TotalSeconds, 1.6, 2.4);
        Assert.InRange(fourth.TotalSeconds, 12.8, 19.2);
        Assert.InRange(late.TotalSeconds, 48, 72);
    }

    [Fact]
    public void A_send_with_files_is_allowed_the_time_its_upload_takes_at_the_slowest_rate_on_top_of_the_send_timeout()
    {
        // A 25 MB reply must not be cut off after 30 s while it is still uploading, and then sent again in full.
        var options = new OutboxOptions { SendTimeout = TimeSpan.FromSeconds(30), MinUploadBytesPerSecond = 50_000 };
        Assert.Equal(TimeSpan.FromSeconds(30), options.SendTimeoutFor(0));
        Assert.Equal(TimeSpan.FromSeconds(30 + 500), options.SendTimeoutFor(25_000_000));
    }
}
