using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Tests.KnowledgeBase;
using Crm.Service.Tests.Support;

namespace Crm.Service.Tests.Console;

/// <summary>The ticket page's knowledge-base panel: published articles through the search index, in the ticket's language.</summary>
public sealed class ConsoleKnowledgePanelTests : AppTest
{
    internal override IDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Console:PublicBaseUrl"] = "https://help.example.com/" };

    private const string Agent = "agent@example.com";

    private async Task<(long Ticket, Guid Customer)> ReceiveAsync(string id, string sender)
    {
        var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name = sender }, text = "refund please" });
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var number = body.GetProperty("ticketNumber").GetInt64();
        return (number, (await App.Grains.GetGrain<ITicketGrain>(number).GetAsync())!.CustomerId);
    }

    [Fact]
    public async Task The_panel_finds_published_articles_in_the_customers_language_with_links_only_to_public_ones()
    {
        using var editor = await KbClient.EditorAsync(App);
        await KbClient.PublishAsync(editor, await KbClient.CreateAsync(editor, "Refund policy", "Refunds within 30 days <script>alert(1)</script>."));
        await KbClient.PublishAsync(editor, await KbClient.CreateAsync(editor, "Refund overrides", "Agents only: refund beyond 30 days.", visibility: "internal"));
        await KbClient.CreateAsync(editor, "Refund draft", "Unfinished refund text.");
        await KbClient.PublishAsync(editor, await KbClient.CreateAsync(editor, "退款政策", "三十天内可以退款。", "zh-CN"));
        var (english, _) = await ReceiveAsync("m1", "c1");
        var (chinese, customer) = await ReceiveAsync("m2", "c2");
        await App.Grains.GetGrain<ICustomerGrain>(customer).UpdateProfileAsync(new CustomerProfileChange { Language = "zh-CN" }, "test");
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        var page = await Eventually.WaitForAsync(() => agent.PageAsync($"/Tickets/{english}?kb=refund"),
            html => html.Contains("data-article=\"Refund overrides\"", StringComparison.Ordinal) && html.Contains("data-article=\"Refund policy\"", StringComparison.Ordinal),
            what: "both published English refund articles in the panel");
        Assert.DoesNotContain("Refund draft", page, StringComparison.Ordinal);
        Assert.DoesNotContain("退款政策", page, StringComparison.Ordinal);
        Assert.DoesNotContain("<script>alert(1)", page, StringComparison.Ordinal);
        // Public: a help-center link on the configured public address (not the host the console was reached by) and
        // the text; internal: marked, readable, and never offered for insertion into a reply (review F11).
        Assert.Matches("data-insert=\"https://help.example.com/help/en/articles/[a-z0-9-]+\"", page);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(page, "data-insert=\"http[^\"]*/help/"));
        Assert.DoesNotContain("data-insert=\"Agents only", page, StringComparison.Ordinal);
        var internalHit = page[page.IndexOf("data-article=\"Refund overrides\"", StringComparison.Ordinal)..];
        internalHit = internalHit[..internalHit.IndexOf("</li>", StringComparison.Ordinal)];
        Assert.Contains("class=\"badge internal\"", internalHit, StringComparison.Ordinal);
        Assert.Contains("Agents only: refund beyond 30 days.", internalHit, StringComparison.Ordinal);
        Assert.DoesNotContain("data-insert", internalHit, StringComparison.Ordinal);

        // The Chinese customer's ticket searches Chinese articles by default, whatever the agent's language.
        var zh = await Eventually.WaitForAsync(() => agent.PageAsync($"/Tickets/{chinese}?kb=" + Uri.EscapeDataString("退款")),
            html => html.Contains("data-article=\"退款政策\"", StringComparison.Ordinal), what: "the Chinese article");
        Assert.Contains("<option value=\"zh-CN\" selected=\"selected\">", zh, StringComparison.Ordinal);
        Assert.DoesNotContain("data-article=\"Refund policy\"", zh, StringComparison.Ordinal);
        // The agent can switch the panel to another language.
        var en = await agent.PageAsync($"/Tickets/{chinese}?kb=refund&kblang=en");
        Assert.Contains("data-article=\"Refund policy\"", en, StringComparison.Ordinal);
    }
    // Issue 21: with no query typed, the panel suggests articles for the customer's own words.
    [Fact]
    public async Task Without_a_query_the_panel_suggests_articles_for_the_customers_latest_message()
    {
        using var editor = await KbClient.EditorAsync(App);
        await KbClient.PublishAsync(editor, await KbClient.CreateAsync(editor, "Printer paper jams", "Open the tray and remove the jammed paper."));
        await KbClient.PublishAsync(editor, await KbClient.CreateAsync(editor, "Refund policy", "Refunds within 30 days."));
        var first = await App.PostMessageAsync(new { messageId = "p1", sender = new { id = "c3", name = "c3" }, text = "hello" });
        var number = (await first.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
        (await App.PostMessageAsync(new { messageId = "p2", sender = new { id = "c3", name = "c3" }, text = "my printer keeps jamming the paper" })).EnsureSuccessStatusCode();
        var quietReply = await App.PostMessageAsync(new { messageId = "p3", sender = new { id = "c4", name = "c4" }, text = "zzqx wibble" });
        var quiet = (await quietReply.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
        using var agent = await ConsoleBrowser.SignedInAsync(App, Agent, ConsoleRoles.Agent);

        var page = await Eventually.WaitForAsync(() => agent.PageAsync($"/Tickets/{number}"),
            html => html.Contains("data-article=\"Printer paper jams\"", StringComparison.Ordinal), what: "the printer article suggested");
        Assert.Contains("id=\"kb-suggested\"", page, StringComparison.Ordinal);
        Assert.DoesNotContain("data-article=\"Refund policy\"", page, StringComparison.Ordinal);
        Assert.DoesNotMatch("id=\"kb-query\"[^>]*value=\"[^\"]", page);
        // The latest customer message counts ("hello" alone matches nothing); where nothing matches, nothing is shown.
        var other = await agent.PageAsync($"/Tickets/{quiet}");
        Assert.DoesNotContain("id=\"kb-suggested\"", other, StringComparison.Ordinal);
        Assert.DoesNotContain("data-article=", other, StringComparison.Ordinal);
    }
}
