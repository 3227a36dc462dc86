using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Crm.Service.Auth;
using Crm.Service.Tests.KnowledgeBase;
using Crm.Service.Tests.Support;
using Microsoft.Playwright;

namespace Crm.Service.Tests.Console;

/// <summary>The ticket page's knowledge-base panel in chromium: "Insert link" and "Insert text" put the article into
/// the reply box at the caret, as text.</summary>
public sealed class KnowledgePanelBrowserTests : BrowserTest
{
    private const string Agent = "agent@example.com";

    protected override async Task SetUpAsync()
    {
        await App.CreateApiChannelAsync();
        await ConsoleBrowser.CreateUserAsync(App, Agent, ConsoleRoles.Agent);
    }

    [Fact]
    public async Task Insert_link_and_insert_text_put_the_article_into_the_reply_box_at_the_caret()
    {
        using var editor = await KbClient.EditorAsync(App);
        await KbClient.PublishAsync(editor, await KbClient.CreateAsync(editor, "Refund policy", "Refunds within 30 days <b>always</b>."));
        var response = await App.PostMessageAsync(new { messageId = "k1", sender = new { id = "c1", name = "c1" }, text = "refund please" });
        var number = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();

        var page = await SignedInPageAsync(Agent, $"/Tickets/{number}?kb=refund", new Regex($"/Tickets/{number}"), "#ReplyText");
        var hit = page.Locator("li[data-article='Refund policy']");
        // The index may lag a moment behind the publish: reload until the article is found.
        await Eventually.WaitForAsync(async () =>
        {
            if (await hit.CountAsync() == 0)
                await page.ReloadAsync();
            return await hit.CountAsync();
        }, count => count == 1, what: "the article in the panel");

        var reply = page.Locator("#ReplyText");
        await reply.FillAsync("Hello, see: ");
        await hit.GetByRole(AriaRole.Button, new() { Name = "Insert link" }).ClickAsync();
        await Assertions.Expect(reply).ToHaveValueAsync(new Regex(@"^Hello, see: http://127\.0\.0\.1:\d+/help/en/articles/[a-z0-9-]+$"));

        await reply.FillAsync("");
        await hit.GetByRole(AriaRole.Button, new() { Name = "Insert text" }).ClickAsync();
        // The article's text, never its HTML: the tag in the body stays visible text in a textarea.
        await Assertions.Expect(reply).ToHaveValueAsync(new Regex("^Refunds within 30 days .*always.*\\.$"));
        Assert.Equal(0, await page.Locator("#ReplyText b").CountAsync());
    }
}
