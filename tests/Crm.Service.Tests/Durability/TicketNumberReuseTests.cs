using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Durability;

/// <summary>Defect 3: on start the ticket sequence is reset to just past the highest number in use; "in use" must
/// include numbers that a row names before the ticket row itself exists.</summary>
public sealed class TicketNumberReuseTests
{
    private static async Task<long> ReceiveTicketNumberAsync(CrmApp app, string messageId, string sender)
    {
        var response = await app.PostMessageAsync(new { messageId, sender = new { id = sender }, text = "hello" });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("ticketNumber").GetInt64();
    }

    /// <summary>Writes to the stopped service's database file, as the crashed process left it.</summary>
    private static async Task WriteAsync(string dataDirectory, Action<CrmDbContext> write)
    {
        var options = new DbContextOptionsBuilder<CrmDbContext>()
            .UseSqlite($"Data Source={Path.Combine(dataDirectory, "crm.db")};Pooling=False").Options;
        await using var db = new CrmDbContext(options);
        write(db);
        await db.SaveChangesAsync();
    }

    private static ConversationRecord ConversationHolding(long ticketNumber) => new()
    {
        Id = Guid.CreateVersion7(),
        Key = GrainKeys.Conversation("bridge", "crashed-" + ticketNumber),
        ChannelAccountId = "bridge",
        Channel = ChannelKind.Api,
        ThreadKey = "crashed-" + ticketNumber,
        CustomerId = Guid.NewGuid(),
        CustomerIdentity = "external:crashed",
        TicketNumber = ticketNumber,
        CreatedAt = DateTimeOffset.UtcNow,
    };

    [Fact]
    public async Task A_number_reserved_by_a_conversation_whose_ticket_was_never_written_is_not_handed_out_after_a_restart()
    {
        using var data = new TempDirectory();
        long first;
        await using (var before = new CrmApp(data.Path))
        {
            await before.CreateApiChannelAsync();
            first = await ReceiveTicketNumberAsync(before, "m-1", "alice");
        }
        // The process was killed after the conversation stored its reserved number and before the ticket row was committed.
        var reserved = first + 1;
        await WriteAsync(data.Path, db => db.Conversations.Add(ConversationHolding(reserved)));
        Assert.Equal(0, await CountTicketsAsync(data.Path, reserved));

        await using var after = new CrmApp(data.Path);
        var next = await ReceiveTicketNumberAsync(after, "m-2", "bob");

        Assert.NotEqual(reserved, next);
        Assert.Equal(reserved + 1, next);
    }

    [Fact]
    public async Task Numbers_named_only_by_messages_or_by_links_between_tickets_are_not_handed_out_after_a_restart()
    {
        using var data = new TempDirectory();
        long first;
        await using (var before = new CrmApp(data.Path))
        {
            await before.CreateApiChannelAsync();
            first = await ReceiveTicketNumberAsync(before, "m-1", "alice");
        }
        await WriteAsync(data.Path, db =>
        {
            var existing = db.Tickets.Single(t => t.Number == first);
            existing.MergedInto = first + 2;
            db.Messages.Add(new MessageRecord
            {
                Id = Guid.CreateVersion7(),
                TicketNumber = first + 4,
                Direction = MessageDirection.Note,
                Author = "agent:ann",
                Text = "a note whose ticket row is gone",
                CreatedAt = DateTimeOffset.UtcNow,
            });
        });

        await using var after = new CrmApp(data.Path);
        var next = await ReceiveTicketNumberAsync(after, "m-2", "bob");

        Assert.Equal(first + 5, next);
    }

    private static async Task<int> CountTicketsAsync(string dataDirectory, long number)
    {
        var options = new DbContextOptionsBuilder<CrmDbContext>()
            .UseSqlite($"Data Source={Path.Combine(dataDirectory, "crm.db")};Mode=ReadOnly;Pooling=False").Options;
        await using var db = new CrmDbContext(options);
        return await db.Tickets.CountAsync(t => t.Number == number);
    }
}
