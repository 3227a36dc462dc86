using System.Text;
using Crm.Service.Grains;

namespace Crm.Service.Tests.Domain;

public sealed class AttachmentRulesTests
{
    [Theory]
    [InlineData("../../etc/passwd", "passwd")]
    [InlineData("C:\\Users\\me\\invoice.pdf", "invoice.pdf")]
    [InlineData("report\u202Efdp.exe", "report_fdp.exe")]
    [InlineData("a<b>c:d\"e|f?g*h.txt", "a_b_c_d_e_f_g_h.txt")]
    [InlineData("  .hidden.  ", "hidden")]
    [InlineData("CON.txt", "_CON.txt")]
    [InlineData("", "attachment")]
    [InlineData(null, "attachment")]
    [InlineData("line\r\nbreak.txt", "line__break.txt")]
    public void File_names_are_made_safe_to_store_and_download(string? name, string expected) =>
        Assert.Equal(expected, AttachmentRules.SanitizeFileName(name));

    [Fact]
    public void Long_file_names_are_cut_to_200_utf8_bytes_keeping_the_extension()
    {
        var name = AttachmentRules.SanitizeFileName(new string('文', 300) + ".pdf");
        Assert.EndsWith(".pdf", name, StringComparison.Ordinal);
        Assert.True(Encoding.UTF8.GetByteCount(name) <= 200);
    }

    [Fact]
    public void Content_type_comes_from_the_bytes_not_the_claim()
    {
        Assert.Equal("image/png", AttachmentRules.SniffContentType([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]));
        Assert.Equal("application/pdf", AttachmentRules.SniffContentType("%PDF-1.7\n"u8));
        Assert.Equal("image/jpeg", AttachmentRules.SniffContentType([0xFF, 0xD8, 0xFF, 0xE0]));
        Assert.Equal("text/plain", AttachmentRules.SniffContentType("你好, plain text"u8));
        Assert.Equal("application/octet-stream", AttachmentRules.SniffContentType([0x00, 0x01, 0x02, 0xFE]));
        // HTML is not sniffed as HTML: it must never be served as something a browser renders.
        Assert.Equal("text/plain", AttachmentRules.SniffContentType("<html><script>alert(1)</script>"u8));
    }
}
