using Crm.Connectors.Email;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace Crm.Service.Tests.Email;

/// <summary>Trimming the quoted earlier mail and the signature for display, against real clients' replies.</summary>
public sealed class ReplyTrimmingTests(ITestOutputHelper output)
{
    private static readonly string ReplyParsing = Path.Combine(MimeMappingTests.Corpus, "reply-parsing");
    private static readonly string Replies = Path.Combine(ReplyParsing, "talon", "standard_replies");

    /// <summary>
    /// The four reply-parsing corpora in tests/ (SOURCES.md in each). Only talon's carry an expected output as files:
    /// standard_replies (the answer's first line: its *_reply_text, else "Hello") and signature/emails/stripped (the body
    /// without its *_signature). crisp, github and zapier keep their expectations in their test code, which was not
    /// copied: their mails are trimmed for the invariants only (no crash, a non-empty part of the mail's own text).
    /// talon's html_replies are HTML, which the timeline shows untrimmed in its frame.
    /// The agreement floor is what the trimmer reaches today (talon's signatures are names found by a trained model,
    /// which a rule-based trimmer does not attempt); a change that lowers it fails here.
    /// </summary>
    [Fact]
    public void All_four_reply_parsing_corpora_trim_and_agree_with_their_expected_output_above_the_floor()
    {
        var mapper = new MimeMessageMapper(Options.Create(new EmailIngestLimits()));
        var (agreed, compared) = (0, 0);
        var missed = new List<string>();

        var standard = Directory.GetFiles(Replies, "*.eml");
        var standardAgreed = 0;
        foreach (var file in standard)
        {
            var text = mapper.Parse(File.ReadAllBytes(file), DateTimeOffset.UnixEpoch).Text!;
            var expectedFile = Path.ChangeExtension(file, null) + "_reply_text";
            var expected = File.Exists(expectedFile) ? File.ReadAllLines(expectedFile)[0].Trim() : "Hello";
            var trimmed = ReplyTrimmer.Trim(text);
            if (trimmed.Split('\n')[0].Trim() == expected && !trimmed.Contains("wrote:", StringComparison.Ordinal))
                standardAgreed++;
            else
                missed.Add("talon/standard_replies/" + Path.GetFileName(file));
        }

        var signatures = Directory.GetFiles(Path.Combine(ReplyParsing, "talon", "signature", "emails", "stripped"), "*_body");
        var signaturesAgreed = 0;
        foreach (var file in signatures)
        {
            var body = File.ReadAllText(file);
            var signature = File.ReadAllText(file[..^"_body".Length] + "_signature").Trim();
            var expected = body.Replace("\r\n", "\n", StringComparison.Ordinal).Trim();
            expected = expected.EndsWith(signature, StringComparison.Ordinal) ? expected[..^signature.Length].Trim() : expected;
            if (ReplyTrimmer.Trim(body) == expected)
                signaturesAgreed++;
            else
                missed.Add("talon/signature/emails/stripped/" + Path.GetFileName(file));
        }
        (agreed, compared) = (standardAgreed + signaturesAgreed, standard.Length + signatures.Length);

        var unexpected = new Dictionary<string, (int Mails, int Trimmed)>();
        foreach (var corpus in new[] { "crisp-email-reply-parser", "github-email_reply_parser", "zapier-email-reply-parser" })
        {
            var (mails, trimmedCount) = (0, 0);
            foreach (var file in Directory.GetFiles(Path.Combine(ReplyParsing, corpus), "*.txt"))
            {
                var text = File.ReadAllText(file).Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
                var trimmed = ReplyTrimmer.Trim(text);
                mails++;
                Assert.False(string.IsNullOrWhiteSpace(trimmed) && !string.IsNullOrWhiteSpace(text), $"{corpus}/{Path.GetFileName(file)} trimmed to nothing");
                Assert.True(text.Contains(trimmed, StringComparison.Ordinal), $"{corpus}/{Path.GetFileName(file)}: the shown part is not the mail's own text");
                if (!ReplyTrimmer.SameText(trimmed, text))
                    trimmedCount++;
            }
            unexpected[corpus] = (mails, trimmedCount);
        }

        output.WriteLine($"talon/standard_replies: {standardAgreed}/{standard.Length} agree");
        output.WriteLine($"talon/signature/emails/stripped: {signaturesAgreed}/{signatures.Length} agree");
        output.WriteLine($"agreement where a corpus has expected output: {agreed}/{compared} = {100.0 * agreed / compared:F1}%");
        foreach (var (corpus, (mails, trimmedCount)) in unexpected)
            output.WriteLine($"{corpus}: no expected output in the corpus; {trimmedCount}/{mails} mails had a quote or signature trimmed");
        output.WriteLine("not agreeing: " + string.Join(", ", missed));
        Assert.Equal(18, compared);
        Assert.True(agreed >= AgreementFloor, $"{agreed}/{compared} agree, below the floor of {AgreementFloor}: {string.Join(", ", missed)}");
        Assert.All(unexpected.Values, v => Assert.True(v.Mails >= 20 && v.Trimmed > 0));
    }

    /// <summary>Of the 18 mails with an expected output (12 standard replies, 6 signatures); measured on the current
    /// trimmer: all 12 answers, and 1 of the 6 signatures (camel_case, whose expected signature is empty; the other five
    /// are bare names and addresses, which this rule-based trimmer does not find).</summary>
    private const int AgreementFloor = 13;

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

    // RC1: a stranger's mail of nested quote headers, or of "> " lines before one word, is trimmed in linear time
    // without recursion (it is trimmed on every page view), and only its first MaxChars are looked at.
    [Fact]
    public void Megabytes_of_crafted_quote_headers_are_trimmed_without_recursion_and_within_the_bound()
    {
        var nested = string.Concat(Enumerable.Repeat("On a wrote:\n>\n", 80_000)) + "the answer";
        var quoted = string.Concat(Enumerable.Repeat(">\n", 500_000)) + "x";
        var before = GC.GetAllocatedBytesForCurrentThread();
        var fromNested = ReplyTrimmer.Trim(nested);
        var fromQuoted = ReplyTrimmer.Trim(quoted);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // Only the first 64 KB are looked at: the crafted top has no answer in it, so the bounded text comes back whole.
        Assert.True(fromNested.Length <= ReplyTrimmer.MaxChars, $"{fromNested.Length} characters");
        Assert.True(fromQuoted.Length <= ReplyTrimmer.MaxChars, $"{fromQuoted.Length} characters");
        // The old recursion re-joined the rest at every level: gigabytes for this input; a bounded pass is a few MB.
        Assert.True(allocated < 64L * 1024 * 1024, $"{allocated:N0} bytes allocated");
        // A long text with no quote is shown whole, not cut at the bound (review RD4).
        var long_ = string.Concat(Enumerable.Repeat("a plain line of a long report\n", 5_000)).Trim();
        Assert.Equal(long_, ReplyTrimmer.Trim(long_));
        // A normal bottom-posted reply still finds its answer below the quote.
        Assert.Equal("Thanks, that works.", ReplyTrimmer.Trim("On Mon, Bob wrote:\n> Try again.\n>\n\nThanks, that works.\n"));
    }
}
