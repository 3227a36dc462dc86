using Crm.Connectors.Email;
using Microsoft.Extensions.Options;

namespace Crm.Service.Tests.Email;

/// <summary>Trimming the quoted earlier mail and the signature for display, against real clients' replies.</summary>
public sealed class ReplyTrimmingTests
{
    private static readonly string Replies = Path.Combine(MimeMappingTests.Corpus, "reply-parsing", "talon", "standard_replies");

    public static TheoryData<string> StandardReplies() =>
        [.. Directory.GetFiles(Replies, "*.eml").Select(f => Path.GetFileNameWithoutExtension(f)!).Order(StringComparer.Ordinal)];

    /// <summary>talon's standard replies: each client's answer is "Hello" (or its *_reply_text) above the quote.</summary>
    [Theory]
    [MemberData(nameof(StandardReplies))]
    public void The_answer_of_each_mail_client_is_kept_and_the_quote_and_signature_trimmed(string client)
    {
        var mail = new MimeMessageMapper(Options.Create(new EmailIngestLimits())).Parse(File.ReadAllBytes(Path.Combine(Replies, client + ".eml")), DateTimeOffset.UnixEpoch);
        var expectedFile = Path.Combine(Replies, client + "_reply_text");
        var expectedFirstLine = File.Exists(expectedFile) ? File.ReadAllLines(expectedFile)[0].Trim() : "Hello";

        var trimmed = ReplyTrimmer.Trim(mail.Text!);

        Assert.Equal(expectedFirstLine, trimmed.Split('\n')[0].Trim());
        Assert.DoesNotContain("wrote:", trimmed, StringComparison.Ordinal);
        Assert.DoesNotContain("\n>", "\n" + trimmed, StringComparison.Ordinal);
        Assert.DoesNotContain("Sent from my", trimmed, StringComparison.Ordinal);
        Assert.True(trimmed.Length < mail.Text!.Trim().Length, "nothing was trimmed");
    }

    [Fact]
    public void A_mail_that_is_all_quote_keeps_its_full_text()
    {
        Assert.Equal("> only a quote", ReplyTrimmer.Trim("> only a quote\n"));
    }

    [Fact]
    public void An_outlook_header_block_starts_the_quote()
    {
        var text = "Thanks, that works.\n\nFrom: Support <support@example.test>\nSent: Monday, 3 April 2023 10:00\nTo: Ann\nSubject: Re: Printer\n\nHave you tried turning it off?";

        Assert.Equal("Thanks, that works.", ReplyTrimmer.Trim(text));
    }
}
