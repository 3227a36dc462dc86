using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Infrastructure.Store;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Crm.Service.Tests.Durability;

/// <summary>A database written by the first release keeps working after the upgrade.</summary>
public sealed class SchemaUpgradeTests
{
    [Fact]
    public async Task A_bridge_id_stored_for_a_reply_by_the_first_release_does_not_block_an_inbound_message_with_that_id()
    {
        using var data = new TempDirectory();
        var options = new StoreOptions { DataDirectory = data.Path };
        Directory.CreateDirectory(data.Path);
        await using (var db = new CrmDbContext(new DbContextOptionsBuilder<CrmDbContext>().UseSqlite(options.ConnectionString).Options))
        {
            await db.GetService<IMigrator>().MigrateAsync("20261122205916_Initial");
            // The first release stored the bridge's id for our reply in the inbound dedupe column.
            await db.Database.ExecuteSqlRawAsync("""
                INSERT INTO Messages (Id, TicketNumber, Direction, ChannelAccountId, ExternalId, Author, CreatedAt, Delivery, AttachmentCount)
                VALUES ('0190b6a0-0000-7000-8000-000000000001', 10001, 1, 'bridge', 'br-7', 'apikey:agent', 0, 2, 0);
                """);
        }

        await using var app = new CrmApp(data.Path);
        await app.CreateApiChannelAsync();
        var response = await app.PostMessageAsync(new { messageId = "br-7", sender = new { id = "u-1" }, text = "A new message" });

        Assert.Equal(System.Net.HttpStatusCode.Accepted, response.StatusCode);
        Assert.False((await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("duplicate").GetBoolean());
        var outbound = await app.QueryAsync(db => db.Messages.AsNoTracking().SingleAsync(m => m.Direction == Crm.Service.Contracts.MessageDirection.Outbound));
        Assert.Equal(("br-7", null), (outbound.OutboundExternalId, outbound.ExternalId));
    }

    // Review RT1/FX3: kb5 shipped on main and was then folded into a later migration, so a database migrated at kb5
    // failed to start ("table KbOldSlugs already exists"). A shipped migration stays; the later one adds only its own.
    [Fact]
    public async Task A_database_migrated_at_kb5_starts_and_gets_the_later_tables()
    {
        using var data = new TempDirectory();
        var options = new StoreOptions { DataDirectory = data.Path };
        Directory.CreateDirectory(data.Path);
        await using (var db = new CrmDbContext(new DbContextOptionsBuilder<CrmDbContext>().UseSqlite(options.ConnectionString).Options))
        {
            await db.GetService<IMigrator>().MigrateAsync("20261124144418_kb5");
            await db.Database.ExecuteSqlRawAsync("INSERT INTO KbOldSlugs (Language, Slug, ArticleId) VALUES ('en', 'old', '0190b6a0-0000-7000-8000-000000000001')");
        }

        await using var app = new CrmApp(data.Path);
        await app.CreateApiChannelAsync();

        Assert.Equal(1, await app.QueryAsync(db => db.Database.SqlQueryRaw<int>("SELECT COUNT(*) AS Value FROM KbOldSlugs").SingleAsync()));
        Assert.Equal(0, await app.QueryAsync(db => db.Database.SqlQueryRaw<int>("SELECT COUNT(*) AS Value FROM Notices").SingleAsync()));
    }
}
