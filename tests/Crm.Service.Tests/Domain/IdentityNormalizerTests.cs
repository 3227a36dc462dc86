using Crm.Service.Contracts;

namespace Crm.Service.Tests.Domain;

public sealed class IdentityNormalizerTests
{
    [Theory]
    [InlineData("Alice@Example.COM", "email:alice@example.com")]
    [InlineData("  bob@example.com ", "email:bob@example.com")]
    [InlineData("user@bücher.example", "email:user@xn--bcher-kva.example")]
    public void Email_addresses_that_differ_only_in_case_space_or_unicode_form_are_one_identity(string value, string expected) =>
        Assert.Equal(expected, GrainKeys.Identity(IdentityKind.Email, value, "any"));

    [Theory]
    [InlineData("+1 (555) 010-2030", "phone:+15550102030")]
    [InlineData("+15550102030", "phone:+15550102030")]
    [InlineData("555.010.2030", "phone:5550102030")]
    public void Phone_numbers_keep_the_plus_and_digits_only(string value, string expected) =>
        Assert.Equal(expected, GrainKeys.Identity(IdentityKind.Phone, value, "any"));

    [Fact]
    public void External_ids_are_scoped_to_their_channel_account() =>
        Assert.NotEqual(GrainKeys.Identity(IdentityKind.External, "42", "whatsapp"), GrainKeys.Identity(IdentityKind.External, "42", "sms"));

    [Theory]
    [InlineData("no-at-sign")]
    [InlineData("@example.com")]
    [InlineData("user@")]
    public void Malformed_email_addresses_are_refused(string value) =>
        Assert.Throws<FormatException>(() => GrainKeys.Identity(IdentityKind.Email, value, "any"));

    [Fact]
    public void A_conversation_key_round_trips_even_when_the_thread_contains_colons()
    {
        var key = GrainKeys.Conversation("bridge", "phone:+15550102030");
        Assert.Equal(("bridge", "phone:+15550102030"), GrainKeys.ParseConversation(key));
    }

    [Theory]
    [InlineData("whatsapp-eu", true)]
    [InlineData("Bad", false)]
    [InlineData("a:b", false)]
    [InlineData("", false)]
    public void Channel_account_ids_are_slugs(string id, bool valid) => Assert.Equal(valid, GrainKeys.IsValidChannelAccountId(id));
}
