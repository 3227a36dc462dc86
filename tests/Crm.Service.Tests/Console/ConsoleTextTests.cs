using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Crm.Service.AgentConsole;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Console;

/// <summary>console6: every UI string the pages look up (a literal <c>T["…"]</c>, or an enum shown through
/// <c>T[x.ToString()]</c>) has a zh-CN value in <c>Resources/ConsoleText.zh-CN.resx</c>, so a new label cannot ship
/// in English only.</summary>
public sealed partial class ConsoleTextTests : AppTest
{
    private static string SourceRoot([CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", "..", "src", "Crm.Service"));

    [GeneratedRegex("""T\["((?:[^"\\]|\\.)*)"[\],]""")]
    private static partial Regex Lookup();

    [Fact]
    public void Every_English_key_of_the_console_pages_has_a_zh_CN_value()
    {
        var root = SourceRoot();
        var keys = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var page in Directory.EnumerateFiles(Path.Combine(root, "Pages"), "*.cshtml", SearchOption.AllDirectories))
            foreach (Match match in Lookup().Matches(File.ReadAllText(page)))
                keys.Add(match.Groups[1].Value.Replace("\\\"", "\"", StringComparison.Ordinal));
        foreach (var name in Enum.GetNames<TicketStatus>().Concat(Enum.GetNames<TicketPriority>()).Concat(Enum.GetNames<MessageDirection>())
                     .Concat(Enum.GetNames<DeliveryStatus>()).Concat(Enum.GetNames<PresenceStatus>()))
            keys.Add(name);
        Assert.True(keys.Count > 200, $"only {keys.Count} keys found under {root}");
        var values = XDocument.Load(Path.Combine(root, "Resources", "ConsoleText.zh-CN.resx")).Root!.Elements("data")
            .ToDictionary(d => (string)d.Attribute("name")!, d => (string?)d.Element("value"), StringComparer.Ordinal);
        // The resource compiler keeps one of two names that differ only in case and drops the other ("Duplicate resource
        // name ... ignored"): the dropped key then shows in English.
        var clashing = values.Keys.GroupBy(k => k, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1).Select(g => string.Join(" / ", g)).ToList();
        Assert.True(clashing.Count == 0, "zh-CN keys that differ only in case: " + string.Join(" | ", clashing));
        var missing = keys.Where(k => !values.TryGetValue(k, out var value) || string.IsNullOrWhiteSpace(value)).ToList();
        Assert.True(missing.Count == 0, "no zh-CN value for: " + string.Join(" | ", missing));
    }

    [Fact]
    public async Task The_ticket_page_in_zh_CN_shows_the_new_labels_in_Chinese()
    {
        var response = await App.PostMessageAsync(new { messageId = "m-1", sender = new { id = "alice" }, subject = "s", text = "t" });
        var ticket = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);
        agent.Client.DefaultRequestHeaders.AcceptLanguage.ParseAdd("zh-CN");
        var page = await agent.PageAsync($"/Tickets/{ticket}");
        Assert.Contains("记录通话", page, StringComparison.Ordinal);
        Assert.Contains("电话号码", page, StringComparison.Ordinal);
    }
}
