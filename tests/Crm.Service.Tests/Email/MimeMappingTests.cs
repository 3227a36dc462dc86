using System.Text;
using System.Text.Json;
using Crm.Connectors.Email;
using Microsoft.Extensions.Options;
using MimeKit;
using MimeKit.Utils;

namespace Crm.Service.Tests.Email;

/// <summary>MIME to our message with MimeKit: charsets, encoded headers, attachments, inline images, TNEF, ids.</summary>
public sealed class MimeMappingTests(Xunit.Abstractions.ITestOutputHelper output)
{
    internal static readonly string Corpus = Path.Combine(AppContext.BaseDirectory, "Corpora", "email");

    private static readonly MimeMessageMapper Mapper = new(Options.Create(new EmailIngestLimits()));

    private static ParsedMail Parse(byte[] raw) => Mapper.Parse(raw, DateTimeOffset.UnixEpoch.AddYears(50));

    static MimeMappingTests() => Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

    [Theory]
    [InlineData("gb2312", "您好，我的订单没有到")]
    [InlineData("gbk", "您好，我的訂單沒有到")]
    [InlineData("gb18030", "您好，我的订单没有到")]
    [InlineData("big5", "您好，我的訂單沒有到")]
    [InlineData("iso-2022-jp", "注文が届きません")]
    [InlineData("iso-8859-2", "Zażółć gęślą jaźń")]
    [InlineData("windows-1251", "Заказ не пришёл")]
    [InlineData("windows-1252", "Café crème, naïve")]
    [InlineData("koi8-r", "Заказ не пришёл")]
    public void Legacy_charsets_decode_in_body_and_rfc2047_subject(string charset, string words)
    {
        var encoding = Encoding.GetEncoding(charset);
        var subject = Rfc2047.EncodeText(new FormatOptions(), encoding, words);
        var head = $"From: =?utf-8?q?J=C3=BCrgen?= <jurgen@example.test>\r\nTo: support@example.test\r\nSubject: {Encoding.ASCII.GetString(subject)}\r\nMessage-ID: <cs-{charset}@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
        var raw = Encoding.ASCII.GetBytes(head).Concat(encoding.GetBytes(words + "\r\n")).ToArray();

        var mail = Parse(raw);

        Assert.Equal(words, mail.Subject);
        Assert.Equal(words, mail.Text!.Trim());
        Assert.Equal("Jürgen", mail.From.Name);
        Assert.Equal($"cs-{charset}@example.test", mail.ExternalMessageId);
        Assert.Same(raw, mail.RawSource);
    }

    [Fact]
    public void Text_html_attachments_and_inline_cid_images_are_kept()
    {
        var builder = new BodyBuilder { TextBody = "See the picture.", HtmlBody = "<p>See <img src=\"cid:pic1@example.test\"></p>" };
        var image = builder.LinkedResources.Add("pic.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3], new ContentType("image", "png"));
        image.ContentId = "pic1@example.test";
        builder.Attachments.Add("invoice.pdf", "%PDF-1.4 test"u8.ToArray(), new ContentType("application", "pdf"));
        var message = new MimeMessage { Subject = "Pictures", MessageId = "pics@example.test", Body = builder.ToMessageBody() };
        message.From.Add(new MailboxAddress("Ann", "ann@example.test"));

        var mail = Parse(Bytes(message));

        Assert.Equal("See the picture.", mail.Text!.Trim());
        Assert.Contains("cid:pic1@example.test", mail.Html);
        Assert.Equal(["invoice.pdf", "pic.png"], mail.Attachments.Select(a => a.FileName).Order());
    }

    [Fact]
    public void A_winmail_dat_is_unpacked_into_its_attachments()
    {
        var tnef = File.ReadAllBytes(Path.Combine(Corpus, "mimekit", "tnef", "winmail.tnef"));
        var expected = File.ReadAllLines(Path.Combine(Corpus, "mimekit", "tnef", "winmail.list")).Where(l => l.Length > 0).ToList();
        var builder = new BodyBuilder { TextBody = "Outlook sent this." };
        builder.Attachments.Add("winmail.dat", tnef, new ContentType("application", "ms-tnef"));
        var message = new MimeMessage { Subject = "TNEF", MessageId = "tnef@example.test", Body = builder.ToMessageBody() };
        message.From.Add(new MailboxAddress("Outlook", "outlook@example.test"));

        var mail = Parse(Bytes(message));

        Assert.Equal(expected.Count, mail.Attachments.Count);
        Assert.DoesNotContain(mail.Attachments, a => a.FileName == "winmail.dat");
    }

    [Fact]
    public void A_mail_without_message_id_is_keyed_by_a_hash_of_its_bytes_and_references_are_read_newest_first()
    {
        var raw = "From: a@example.test\r\nSubject: x\r\nIn-Reply-To: <c@example.test>\r\nReferences: <a@example.test> <b@example.test> <c@example.test>\r\n\r\nbody\r\n"u8.ToArray();

        var mail = Parse(raw);

        Assert.Equal(EmailIds.OfRawSource(raw), mail.ExternalMessageId);
        Assert.Equal(EmailIds.OfRawSource(raw), Parse([.. raw]).ExternalMessageId);
        Assert.Equal(["c@example.test", "b@example.test", "a@example.test"], mail.ReferencedIds);
    }

    [Fact]
    public void Our_message_ids_map_back_to_the_outbound_message()
    {
        var id = Guid.CreateVersion7();

        Assert.Equal(id, EmailIds.OutboundMessageIdOf(EmailIds.Outbound(id, "example.test")));
        Assert.Equal(id, EmailIds.OutboundMessageIdOf($"<{EmailIds.Outbound(id, "other.example")}>"));
        Assert.Null(EmailIds.OutboundMessageIdOf("someone@example.test"));
    }

    [Fact]
    public void A_mail_with_no_usable_sender_is_unmappable()
    {
        var ex = Assert.Throws<UnmappableMailException>(() => Parse("Subject: hi\r\n\r\nbody\r\n"u8.ToArray()));
        Assert.Contains("From", ex.Message);
    }

    /// <summary>Where the corpus carries an expected parse (imap_tools' JSON), subject, sender and attachment names agree.</summary>
    [Fact]
    public void A_sender_address_the_core_refuses_makes_the_mail_unmappable_instead_of_failing_every_hand_off()
    {
        var raw = System.Text.Encoding.UTF8.GetBytes("From: ali\u200Bce@example.com\r\nSubject: hi\r\nMessage-ID: <zw@example.com>\r\n\r\nbody\r\n");
        Assert.Throws<UnmappableMailException>(() => Parse(raw));
    }

    /// <summary>Every imap_tools expected parse (expected/**/*.json, each with messages/&lt;same path&gt;.eml): subject,
    /// sender, text and attachment names agree, except the differences listed (and explained) in
    /// <see cref="ImapToolsDifferences"/>; a difference not listed, or a listed one that no longer occurs, fails.</summary>
    [Fact]
    public void Subject_sender_text_and_attachment_names_agree_with_the_expected_parses_of_imap_tools()
    {
        var disagreements = new List<string>();
        var (compared, unmappable) = (0, 0);
        var expectedRoot = Path.Combine(Corpus, "imap_tools", "expected");
        foreach (var expectedFile in Directory.GetFiles(expectedRoot, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var name = Path.ChangeExtension(Path.GetRelativePath(expectedRoot, expectedFile), null).Replace('\\', '/');
            var messageFile = Path.Combine(Corpus, "imap_tools", "messages", name + ".eml");
            Assert.True(File.Exists(messageFile), $"no message for {name}");
            var expected = JsonDocument.Parse(File.ReadAllText(expectedFile)).RootElement;
            ParsedMail mail;
            try
            {
                mail = Parse(File.ReadAllBytes(messageFile));
            }
            catch (UnmappableMailException)
            {
                // imap_tools parses mails with no usable sender too; we quarantine them (the corpus test covers that).
                unmappable++;
                var expectedFrom = expected.GetProperty("from_").GetString()!;
                if (MailboxAddress.TryParse(expectedFrom, out var address) && address.Address.Contains('@', StringComparison.Ordinal))
                    disagreements.Add($"{name}: unmappable, but imap_tools found sender '{expectedFrom}'");
                continue;
            }
            compared++;
            var subject = expected.GetProperty("subject").GetString()!;
            if (Normalize(subject) != Normalize(mail.Subject ?? ""))
            {
                disagreements.Add($"{name}: subject");
                output.WriteLine($"{name}: subject ours '{mail.Subject}', imap_tools '{subject}'");
            }
            var from = expected.GetProperty("from_").GetString()!;
            if (from.Length > 0 && !string.Equals(from, mail.From.Address, StringComparison.OrdinalIgnoreCase))
                disagreements.Add($"{name}: from");
            // imap_tools joins the text of attached (forwarded) mails into the body; we keep those as .eml attachments.
            var text = expected.GetProperty("text").GetString()!;
            if (Normalize(text).Length > 0 && !mail.Message.BodyParts.Any(p => p.ContentType.IsMimeType("message", "rfc822")) && !Normalize(mail.Text ?? "").Contains(Normalize(text), StringComparison.Ordinal))
            {
                disagreements.Add($"{name}: text");
                output.WriteLine($"{name}: text ours '{Normalize(mail.Text ?? "")[..Math.Min(160, Normalize(mail.Text ?? "").Length)]}', imap_tools '{Normalize(text)[..Math.Min(160, Normalize(text).Length)]}'");
            }
            var names = expected.GetProperty("attachments").EnumerateArray()
                .Where(a => a.GetProperty("content_disposition").GetString() == "attachment")
                .Select(a => a.GetProperty("filename").GetString()).Where(n => !string.IsNullOrEmpty(n)).Order().ToList();
            var ours = mail.Attachments.Select(a => a.FileName).ToHashSet();
            if (names.Any(n => !ours.Contains(n!)))
            {
                disagreements.Add($"{name}: attachments");
                output.WriteLine($"{name}: attachments ours [{string.Join(", ", ours)}], imap_tools [{string.Join(", ", names)}]");
            }
        }
        output.WriteLine($"imap_tools: {compared} compared, {unmappable} unmappable (quarantined), {disagreements.Count} differences");
        foreach (var d in disagreements)
            output.WriteLine("  " + d);
        Assert.True(compared >= 100, $"only {compared} messages compared");
        Assert.Equal(ImapToolsDifferences.Keys.Order(StringComparer.Ordinal), disagreements.Order(StringComparer.Ordinal));
    }

    /// <summary>Where our parse differs from imap_tools' on purpose or by MimeKit's reading, and why.</summary>
    private static readonly Dictionary<string, string> ImapToolsDifferences = new()
    {
        ["attachment_emails/attachment_message_rfc822: attachments"] =
            "broken.pdf is inside the attached mail: we keep that mail whole as ForwardedMessage.eml, imap_tools lists its parts too.",
        ["attachment_emails/attachment_with_encoded_name: attachments"] =
            "name*=iso-2022-jp'ja'…%8a…: byte 0x8a is not ISO-2022-JP; MimeKit makes it '?', imap_tools U+FFFD.",
        ["plain_emails/raw_email8: attachments"] = "The same mail as attachment_with_encoded_name.",
        ["error_emails/content_transfer_encoding_plain: text"] =
            "Content-Transfer-Encoding: plain is no encoding: both texts start alike and differ further on (not looked into).",
        ["error_emails/invalid_subject_characters: subject"] =
            "Raw UTF-8 in the Subject: we decode Formação/Verão, imap_tools drops the non-ASCII letters (Formao/Vero).",
        ["mime_emails/raw_email4: text"] =
            "Two text/plain parts: our text is MimeKit's text body (the first), imap_tools joins all of them.",
        ["plain_emails/raw_email6: text"] =
            "Declared us-ascii with UTF-8 bytes (Envoyé): imap_tools drops those bytes, MimeKit makes each a '?'.",
        ["plain_emails/raw_email_incorrect_header: subject"] =
            "A broken header line ('quite Delivered-To:'): imap_tools ends the header there, MimeKit skips the line and reads the Subject below it.",
        ["plain_emails/raw_email_incorrect_header: text"] = "The same: imap_tools' text starts with the rest of the header.",
        ["rfc2822/example13: subject"] =
            "RFC 2822 obsolete syntax 'Subject     :' (space before the colon): MimeKit reads it, imap_tools does not.",
        ["rfc2822/example13: text"] = "The same: imap_tools' text starts with the headers it did not read.",
        ["rfc2822/example14: subject"] =
            "'Re: TEST' then folded encoded words: MimeKit keeps the folding's space and tab before them (ours 'Re: TEST \\tテストテスト'), imap_tools drops them.",
    };

    /// <summary>mime4j's expected XML (testmsgs/*.xml, the top-level header as mime4j read it): our subject and sender
    /// agree with its Subject and From (RFC 2047 decoded). A mail without a usable From is quarantined by us; then the
    /// XML must have none either. Differences listed in <see cref="Mime4jDifferences"/>, with the reason.</summary>
    [Fact]
    public void Subject_and_sender_agree_with_the_expected_xml_of_mime4j()
    {
        var root = Path.Combine(Corpus, "mime4j", "testmsgs");
        var disagreements = new List<string>();
        var (compared, unmappable) = (0, 0);
        foreach (var xmlFile in Directory.GetFiles(root, "*.xml").Where(f => !f.EndsWith("_decoded.xml", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileNameWithoutExtension(xmlFile);
            var messageFile = Path.Combine(root, name + ".msg");
            if (!File.Exists(messageFile))
                continue;
            var xml = File.ReadAllText(xmlFile);
            var header = xml.IndexOf("<header>", StringComparison.Ordinal) is var start and >= 0 ? xml[start..Math.Max(start, xml.IndexOf("</header>", start, StringComparison.Ordinal))] : "";
            string? Field(string field) => System.Text.RegularExpressions.Regex.Match(header, @"<field>\s*" + field + @":(.*?)</field>",
                System.Text.RegularExpressions.RegexOptions.Singleline | System.Text.RegularExpressions.RegexOptions.IgnoreCase) is { Success: true } m
                ? Rfc2047.DecodeText(Encoding.UTF8.GetBytes(System.Net.WebUtility.HtmlDecode(Unfold(m.Groups[1].Value)).Trim())) : null;
            var expectedSubject = Field("Subject");
            var expectedFrom = Field("From") is { } f && InternetAddressList.TryParse(f, out var list) ? list.Mailboxes.FirstOrDefault()?.Address : null;
            ParsedMail mail;
            try
            {
                mail = Parse(File.ReadAllBytes(messageFile));
            }
            catch (UnmappableMailException)
            {
                unmappable++;
                if (expectedFrom is { Length: > 0 })
                    disagreements.Add($"{name}: unmappable, but mime4j read From '{expectedFrom}'");
                continue;
            }
            compared++;
            if (Normalize(expectedSubject ?? "") != Normalize(mail.Subject ?? ""))
                disagreements.Add($"{name}: subject");
            if (!string.Equals(expectedFrom, mail.From.Address, StringComparison.OrdinalIgnoreCase))
                disagreements.Add($"{name}: from");
        }
        output.WriteLine($"mime4j: {compared} compared, {unmappable} unmappable (no From: quarantined), {disagreements.Count} differences");
        foreach (var d in disagreements)
            output.WriteLine("  " + d);
        Assert.True(compared + unmappable >= 30, $"only {compared + unmappable} messages read");
        Assert.True(compared >= 8, $"only {compared} messages compared");
        Assert.Equal(Mime4jDifferences.Keys.Order(StringComparer.Ordinal), disagreements.Order(StringComparer.Ordinal));
    }

    private static readonly Dictionary<string, string> Mime4jDifferences = new()
    {
    };

    private static string Unfold(string value) => System.Text.RegularExpressions.Regex.Replace(value, @"\r?\n(?=[ \t])", "");

    private static string Normalize(string text) => string.Join(" ", text.Split((char[])[' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries));

    internal static byte[] Bytes(MimeMessage message)
    {
        using var buffer = new MemoryStream();
        message.WriteTo(buffer);
        return buffer.ToArray();
    }
}
