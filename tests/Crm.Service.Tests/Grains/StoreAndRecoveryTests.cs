using Crm.Service.Contracts;
using Crm.Service.Grains;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Grains;

[Collection(ClusterCollection.Name)]
public sealed class StoreAndRecoveryTests(TestClusterFixture fixture)
{
    private ICrmStore Store => fixture.SiloServices.GetRequiredService<ICrmStore>();

    [Fact]
    public async Task One_duplicate_in_a_group_commit_fails_only_its_own_write_set()
    {
        var channel = "dup-" + Guid.NewGuid().ToString("N")[..8];
        MessageRecord Row(string externalId) => new()
        {
            Id = Guid.CreateVersion7(),
            TicketNumber = 1,
            Direction = MessageDirection.Inbound,
            ChannelAccountId = channel,
            ExternalId = externalId,
            Author = "test",
            Text = externalId,
            CreatedAt = DateTimeOffset.UtcNow,
        };
        await Store.CommitAsync(new WriteSet().Insert(Row("taken")));

        // Submitted together, so the writer batches them; one of them repeats a stored external id.
        var writer = fixture.SiloServices.GetRequiredService<GroupCommitWriter>();
        var transactionsBefore = writer.Transactions;
        var commits = Enumerable.Range(0, 50)
            .Select(i => Store.CommitAsync(new WriteSet().Insert(Row(i == 25 ? "taken" : $"free-{i}"))))
            .ToList();
        var outcomes = await Task.WhenAll(commits.Select(async c =>
        {
            try
            {
                await c;
                return "ok";
            }
            catch (DuplicateKeyException)
            {
                return "duplicate";
            }
        }));

        Assert.Equal(49, outcomes.Count(o => o == "ok"));
        Assert.Equal("duplicate", outcomes[25]);
        Assert.Equal(50, await fixture.QueryAsync(db => db.Messages.CountAsync(m => m.ChannelAccountId == channel)));
        Assert.True(writer.Transactions - transactionsBefore < 50, $"50 write sets took {writer.Transactions - transactionsBefore} transactions: no group commit");
    }

    [Fact]
    public async Task A_ticket_number_stored_with_its_conversation_but_never_opened_is_opened_by_the_next_message()
    {
        // The state a crash leaves between storing the conversation's ticket pointer and opening the ticket.
        var scenario = await new GrainScenario(fixture.Grains).CreateChannelAsync();
        var phone = GrainScenario.NewPhone();
        var number = await fixture.SiloServices.GetRequiredService<ITicketNumberAllocator>().NextAsync();
        var identity = GrainKeys.Identity(IdentityKind.Phone, phone, scenario.Channel);
        var customer = await fixture.Grains.GetGrain<IIdentityGrain>(identity).ResolveCustomerAsync("Crash Victim");
        var threadKey = "phone:" + phone;
        await Store.CommitAsync(new WriteSet().Insert(new ConversationRecord
        {
            Id = Guid.CreateVersion7(),
            Key = GrainKeys.Conversation(scenario.Channel, threadKey),
            ChannelAccountId = scenario.Channel,
            Channel = ChannelKind.Api,
            ThreadKey = threadKey,
            CustomerId = customer,
            CustomerIdentity = identity,
            TicketNumber = number,
            CreatedAt = DateTimeOffset.UtcNow,
        }));
        Assert.Null(await fixture.Grains.GetGrain<ITicketGrain>(number).GetAsync());

        var result = await scenario.ReceiveAsync(scenario.Message("after-crash", phone, "are you there?"));

        Assert.Equal(number, result.TicketNumber);
        var ticket = (await fixture.Grains.GetGrain<ITicketGrain>(number).GetAsync())!;
        Assert.Equal(customer, ticket.CustomerId);
        Assert.Equal(1, await fixture.QueryAsync(db => db.Tickets.CountAsync(t => t.CustomerId == customer)));
    }

    [Fact]
    public void The_domain_references_no_web_store_or_channel_library()
    {
        var references = typeof(TicketGrain).Assembly.GetReferencedAssemblies().Select(a => a.Name ?? "").ToList();
        Assert.Contains(references, name => name.StartsWith("Orleans", StringComparison.Ordinal));
        string[] forbidden = ["Microsoft.AspNetCore", "Microsoft.EntityFrameworkCore", "Microsoft.Data.Sqlite", "MailKit", "MimeKit", "Telegram", "Lucene", "HtmlSanitizer", "AngleSharp", "Npgsql"];
        Assert.DoesNotContain(references, name => forbidden.Any(f => name.StartsWith(f, StringComparison.Ordinal)));
    }
}
