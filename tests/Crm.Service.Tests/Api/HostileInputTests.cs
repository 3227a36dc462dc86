using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AngleSharp.Html.Parser;
using Crm.Service.Grains;
using Crm.Service.Grains.Storage;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Api;

/// <summary>Third-party hostile data (tests/Crm.Service.Tests/Corpora, see SOURCES.md there) through the real paths.</summary>
public sealed class HostileInputTests : AppTest
{
    private static readonly string Corpora = Path.Combine(AppContext.BaseDirectory, "Corpora", "hostile");

    [Fact]
    public async Task Every_naughty_string_is_stored_and_returned_exactly_or_refused_by_name()
    {
        var strings = JsonSerializer.Deserialize<List<string>>(await File.ReadAllTextAsync(Path.Combine(Corpora, "blns", "blns.json")))!;
        Assert.True(strings.Count > 500);
        var accepted = new Dictionary<Guid, string>();
        for (var i = 0; i < strings.Count; i++)
        {
            var response = await App.PostMessageAsync(new { messageId = $"blns-{i}", sender = new { id = "naughty", name = strings[i].Length <= 200 ? strings[i] : null }, text = strings[i] });
            if (string.IsNullOrWhiteSpace(strings[i]))
            {
                Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
                continue;
            }
            Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"string {i} ({strings[i]}): {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            accepted[(await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("messageId").GetGuid()] = strings[i];
        }
        var stored = await App.QueryAsync(db => db.Messages.ToDictionaryAsync(m => m.Id, m => m.Text));
        Assert.Equal(accepted.Count, stored.Count);
        foreach (var (id, text) in accepted)
            Assert.Equal(text, stored[id]);
    }

    [Fact]
    public void Xss_vectors_lose_every_script_handler_and_remote_load()
    {
        var sanitizer = App.Services.GetRequiredService<IHtmlSanitizer>();
        var vectors = JsonSerializer.Deserialize<List<JsonElement>>(File.ReadAllText(Path.Combine(Corpora, "sanitizer-vectors", "htmlsanitizer-tests.json")))!;
        Assert.NotEmpty(vectors);
        var parser = new HtmlParser();
        foreach (var vector in vectors)
        {
            var input = vector.GetProperty("input").GetString()!;
            var output = parser.ParseDocument(sanitizer.Sanitize(input));
            Assert.Empty(output.QuerySelectorAll("script, iframe, object, embed, form, base, meta, link"));
            foreach (var element in output.All)
            {
                foreach (var attribute in element.Attributes)
                {
                    Assert.False(attribute.Name.StartsWith("on", StringComparison.OrdinalIgnoreCase), $"{vector.GetProperty("test")}: handler {attribute.Name} kept");
                    if (attribute.Name is "href" or "src" or "action" or "formaction" or "background" or "poster")
                    {
                        var value = new string(attribute.Value.Where(c => !char.IsWhiteSpace(c) && !char.IsControl(c)).ToArray());
                        Assert.False(value.StartsWith("javascript:", StringComparison.OrdinalIgnoreCase) || value.StartsWith("vbscript:", StringComparison.OrdinalIgnoreCase)
                            || value.StartsWith("data:text/html", StringComparison.OrdinalIgnoreCase), $"{vector.GetProperty("test")}: {attribute.Name}={attribute.Value}");
                    }
                    if (attribute.Name == "src")
                        Assert.False(attribute.Value.Trim().StartsWith("http", StringComparison.OrdinalIgnoreCase) || attribute.Value.StartsWith("//", StringComparison.Ordinal), $"{vector.GetProperty("test")}: remote load kept");
                }
            }
        }
    }

    [Fact]
    public void Path_traversal_payloads_become_plain_file_names()
    {
        var payloads = Directory.GetFiles(Path.Combine(Corpora, "payloadsallthethings", "path-traversal")).SelectMany(File.ReadAllLines).Where(l => l.Length > 0).ToList();
        Assert.True(payloads.Count > 1000);
        var root = Path.GetFullPath(Path.Combine(Path.GetTempPath(), "attachments-root"));
        foreach (var payload in payloads)
        {
            var name = AttachmentRules.SanitizeFileName(payload);
            Assert.DoesNotContain('/', name);
            Assert.DoesNotContain('\\', name);
            Assert.NotEqual("..", name);
            Assert.StartsWith(root + Path.DirectorySeparatorChar, Path.GetFullPath(Path.Combine(root, name)), StringComparison.Ordinal);
        }
    }
}
