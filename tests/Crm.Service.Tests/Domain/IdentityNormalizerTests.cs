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
    [InlineData("\u0130vy@example.com", "ivy@example.com")]     // dotted capital I
    [InlineData("\u017Fam@example.com", "sam@example.com")]     // long s, upper-cases to "S"
    [InlineData("\u0131vy@example.com", "ivy@example.com")]     // dotless i, upper-cases to "I"
    public void Non_ascii_letters_in_the_local_part_never_fold_onto_another_mailbox(string spoof, string victim) =>
        Assert.NotEqual(IdentityNormalizer.Email(victim), IdentityNormalizer.Email(spoof));

    [Fact]
    public void Composed_and_decomposed_spellings_are_one_identity_and_ascii_case_still_folds()
    {
        Assert.Equal(IdentityNormalizer.Email("Jos\u00E9@example.com"), IdentityNormalizer.Email("jose\u0301@Example.com"));
        // Non-ASCII capitals fold as they always did (keys stored by earlier versions stay valid).
        Assert.Equal("\u00E9lodie@example.com", IdentityNormalizer.Email("\u00C9LODIE@EXAMPLE.COM"));
        Assert.Equal("j\u00F6rg@x.de", IdentityNormalizer.Email("J\u00D6RG@x.de"));
    }

    [Theory]
    [InlineData("ali\u200Bce@example.com")]   // zero-width space
    [InlineData("alice\u202E@example.com")]   // right-to-left override
    [InlineData("ali\u0000ce@example.com")]
    [InlineData("alice@exa\u200Dmple.com")]
    [InlineData("a\U000E0041b@example.com")]  // tag character, outside the BMP
    public void Addresses_with_control_or_invisible_characters_are_refused(string value) =>
        Assert.Throws<FormatException>(() => IdentityNormalizer.Email(value));

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
