using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Auth;
using Crm.Service.Contracts;
using Crm.Service.Infrastructure.Documents;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Tests.Support;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Console;

/// <summary>console6: what a restricted team hides also stays hidden in link audit rows (review CT1), customer
/// documents (CT3) and the API's ticket lists of a personal key.</summary>
public sealed class ConsoleRestrictedReachTests : AppTest
{
    private const string Outsider = "outsider@example.com";
    private const string Boss = "boss@example.com";
    private const string Member = "member@example.com";

    private Task<(long Number, Guid Customer)> ReceiveAsync(string id, string sender) => App.ReceiveAsync(id, sender, "Subject ", "text ");

    private Task<string> UserIdAsync(string email) => App.UserIdAsync(email);

    private async Task RestrictAsync(long ticket, params string[] members)
    {
        var ids = new List<string>();
        foreach (var m in members)
            ids.Add(await UserIdAsync(m));
        await App.Services.GetRequiredService<TeamDirectory>().SaveAsync("vip", "VIP", true, ids, CancellationToken.None);
        await App.Grains.GetGrain<ITicketGrain>(ticket).ChangeAsync(new TicketChange { Team = "vip" }, "test");
    }

    [Fact]
    public async Task A_link_to_a_restricted_ticket_leaves_no_number_in_an_outsiders_history_on_the_page_or_in_REST()
    {
        var (open, _) = await ReceiveAsync("m-1", "alice");
        var (secret, _) = await ReceiveAsync("m-2", "bob");
        using var outsider = await ConsoleBrowser.SignedInAsync(App, Outsider, ConsoleRoles.Agent);
        using var boss = await ConsoleBrowser.SignedInAsync(App, Boss, ConsoleRoles.Supervisor);
        await RestrictAsync(secret, Boss);
        using var bossApi = await boss.PersonalKeyAsync(App);
        using var outsiderApi = await outsider.PersonalKeyAsync(App);
        Assert.Equal(HttpStatusCode.Created, (await bossApi.PostAsJsonAsync($"/api/v1/tickets/{open}/links", new { ticket = secret, relation = "duplicate" })).StatusCode);

        // The supervisor sees the audit row ...
        Assert.Contains($"#{secret}", await bossApi.GetStringAsync($"/api/v1/tickets/{open}/history"), StringComparison.Ordinal);
        Assert.Contains($"#{secret}", await boss.PageAsync($"/Tickets/{open}"), StringComparison.Ordinal);
        // ... the outsider sees neither the number nor the relation, anywhere.
        Assert.DoesNotContain($"#{secret}", await outsider.PageAsync($"/Tickets/{open}"), StringComparison.Ordinal);
        Assert.DoesNotContain($"#{secret}", await outsiderApi.GetStringAsync($"/api/v1/tickets/{open}/history"), StringComparison.Ordinal);
        Assert.DoesNotContain($"#{secret}", await outsiderApi.GetStringAsync($"/api/v1/tickets/{open}"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_customers_documents_are_hidden_from_an_agent_who_can_reach_none_of_its_tickets_when_one_is_restricted()
    {
        var (secret, customer) = await ReceiveAsync("m-1", "vip-customer");
        using var outsider = await ConsoleBrowser.SignedInAsync(App, Outsider, ConsoleRoles.Agent);
        using var member = await ConsoleBrowser.SignedInAsync(App, Member, ConsoleRoles.Agent);
        using var boss = await ConsoleBrowser.SignedInAsync(App, Boss, ConsoleRoles.Supervisor);
        await RestrictAsync(secret, Member);
        var (_, document) = await App.Services.GetRequiredService<CustomerDocumentStore>().AddAsync(customer, "contract.pdf", "contract"u8.ToArray(), "test", CancellationToken.None);
        var download = $"/Customers/{customer}?handler=Document&document={document!.Id}";

        Assert.Equal(HttpStatusCode.NotFound, (await outsider.GetAsync(download)).StatusCode);
        Assert.DoesNotContain("contract.pdf", await outsider.PageAsync($"/Customers/{customer}"), StringComparison.Ordinal);
        Assert.DoesNotContain("id=\"documents\"", await outsider.PageAsync($"/Customers/{customer}"), StringComparison.Ordinal);
        var delete = await outsider.SubmitAsync($"/Customers/{customer}", new() { ["DocumentId"] = document.Id.ToString() }, $"/Customers/{customer}?handler=DeleteDocument");
        Assert.Equal(HttpStatusCode.NotFound, delete.StatusCode);
        // The team's member and a supervisor see them.
        Assert.Equal(HttpStatusCode.OK, (await member.GetAsync(download)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await boss.GetAsync(download)).StatusCode);
        Assert.Contains("contract.pdf", await member.PageAsync($"/Customers/{customer}"), StringComparison.Ordinal);

        // Once the customer also has a ticket the outsider can reach, the documents are theirs to see too.
        await App.Grains.GetGrain<ITicketGrain>(secret + 1000).OpenAsync(new TicketOpening
        {
            Subject = "general", CustomerId = customer, ConversationId = Guid.NewGuid(), ConversationKey = "test:general", Actor = "test",
        });
        Assert.Equal(HttpStatusCode.OK, (await outsider.GetAsync(download)).StatusCode);
    }

    [Fact]
    public async Task A_personal_keys_ticket_lists_leave_out_a_restricted_teams_tickets_its_person_may_not_see()
    {
        var (secret, customer) = await ReceiveAsync("m-1", "bob");
        var (open, _) = await ReceiveAsync("m-2", "alice");
        using var outsider = await ConsoleBrowser.SignedInAsync(App, Outsider, ConsoleRoles.Agent);
        using var boss = await ConsoleBrowser.SignedInAsync(App, Boss, ConsoleRoles.Supervisor);
        await RestrictAsync(secret, Boss);
        using var outsiderApi = await outsider.PersonalKeyAsync(App);
        using var bossApi = await boss.PersonalKeyAsync(App);
        using var systemApi = await App.AgentAsync();

        static async Task<long[]> NumbersAsync(HttpClient api, string path) =>
            [.. (await api.GetFromJsonAsync<JsonElement>(path)).GetProperty("items").EnumerateArray().Select(t => t.GetProperty("number").GetInt64())];

        Assert.Equal([open], await NumbersAsync(outsiderApi, "/api/v1/tickets"));
        Assert.Empty(await NumbersAsync(outsiderApi, "/api/v1/tickets?team=vip"));
        Assert.Empty(await NumbersAsync(outsiderApi, $"/api/v1/customers/{customer}/tickets"));
        Assert.Equal(new[] { open, secret }.Order(), (await NumbersAsync(bossApi, "/api/v1/tickets")).Order());
        Assert.Equal([secret], await NumbersAsync(bossApi, $"/api/v1/customers/{customer}/tickets"));
        // A system key (no person) keeps the API's reach.
        Assert.Equal(new[] { open, secret }.Order(), (await NumbersAsync(systemApi, "/api/v1/tickets")).Order());
    }
}

/// <summary>console6, review CT10: a customer merge takes the source's documents along.</summary>
public sealed class ConsoleCustomerMergeDocumentsTests : AppTest
{
    [Fact]
    public async Task A_document_uploaded_on_a_customer_shows_on_the_customer_it_is_merged_into()
    {
        async Task<Guid> CustomerAsync(string id, string sender)
        {
            var response = await App.PostMessageAsync(new { messageId = id, sender = new { id = sender, name = sender }, subject = "s " + id, text = "t " + id });
            return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("customerId").GetGuid();
        }
        var source = await CustomerAsync("m-1", "x");
        var target = await CustomerAsync("m-2", "y");
        var documents = App.Services.GetRequiredService<CustomerDocumentStore>();
        var (_, document) = await documents.AddAsync(source, "invoice.pdf", "invoice"u8.ToArray(), "test", CancellationToken.None);
        await App.Grains.GetGrain<IMergeCoordinatorGrain>(IMergeCoordinatorGrain.Customers).MergeCustomersAsync(source, target, "test");

        Assert.Equal([document!.Id], (await documents.ListAsync(target, CancellationToken.None)).Select(d => d.Id));
        using var agent = await ConsoleBrowser.SignedInAsync(App, "agent@example.com", ConsoleRoles.Agent);
        Assert.Contains($"data-document=\"{document.Id}\"", await agent.PageAsync($"/Customers/{target}"), StringComparison.Ordinal);
    }
}
