using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Crm.Service.Infrastructure.Store.Migrations
{
    /// <inheritdoc />
    public partial class SecondPass : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Messages_ChannelAccountId_ExternalId",
                table: "Messages");

            migrationBuilder.AddColumn<string>(
                name: "OutboundExternalId",
                table: "Messages",
                type: "TEXT",
                maxLength: 255,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "RequestHash",
                table: "Messages",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "LastError",
                table: "ChannelAccounts",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "LastErrorAt",
                table: "ChannelAccounts",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "LastSuccessAt",
                table: "ChannelAccounts",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "SecretSettings",
                table: "ChannelAccounts",
                type: "TEXT",
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<string>(
                name: "Settings",
                table: "ChannelAccounts",
                type: "TEXT",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "ChangeCursors",
                columns: table => new
                {
                    Consumer = table.Column<string>(type: "TEXT", nullable: false),
                    Sequence = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ChangeCursors", x => x.Consumer);
                });

            migrationBuilder.CreateTable(
                name: "Changes",
                columns: table => new
                {
                    Sequence = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    Entity = table.Column<string>(type: "TEXT", nullable: false),
                    EntityId = table.Column<string>(type: "TEXT", nullable: false),
                    Kind = table.Column<string>(type: "TEXT", nullable: false),
                    At = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Changes", x => x.Sequence);
                });

            migrationBuilder.CreateIndex(
                name: "IX_Tickets_Assignee_UpdatedAt",
                table: "Tickets",
                columns: new[] { "Assignee", "UpdatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_Tickets_Team_UpdatedAt",
                table: "Tickets",
                columns: new[] { "Team", "UpdatedAt" });

            // The first release kept a channel's id for our replies in the inbound dedupe column: move it to its own,
            // so it can never shadow (or block) a customer's message with the same id.
            migrationBuilder.Sql("UPDATE Messages SET OutboundExternalId = ExternalId, ExternalId = NULL WHERE Direction <> 0 AND ExternalId IS NOT NULL;");

            migrationBuilder.CreateIndex(
                name: "IX_Messages_ChannelAccountId_ExternalId",
                table: "Messages",
                columns: new[] { "ChannelAccountId", "ExternalId" },
                unique: true,
                filter: "\"ExternalId\" IS NOT NULL AND \"Direction\" = 0");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "ChangeCursors");

            migrationBuilder.DropTable(
                name: "Changes");

            migrationBuilder.DropIndex(
                name: "IX_Tickets_Assignee_UpdatedAt",
                table: "Tickets");

            migrationBuilder.DropIndex(
                name: "IX_Tickets_Team_UpdatedAt",
                table: "Tickets");

            migrationBuilder.DropIndex(
                name: "IX_Messages_ChannelAccountId_ExternalId",
                table: "Messages");

            migrationBuilder.DropColumn(
                name: "OutboundExternalId",
                table: "Messages");

            migrationBuilder.DropColumn(
                name: "RequestHash",
                table: "Messages");

            migrationBuilder.DropColumn(
                name: "LastError",
                table: "ChannelAccounts");

            migrationBuilder.DropColumn(
                name: "LastErrorAt",
                table: "ChannelAccounts");

            migrationBuilder.DropColumn(
                name: "LastSuccessAt",
                table: "ChannelAccounts");

            migrationBuilder.DropColumn(
                name: "SecretSettings",
                table: "ChannelAccounts");

            migrationBuilder.DropColumn(
                name: "Settings",
                table: "ChannelAccounts");

            migrationBuilder.CreateIndex(
                name: "IX_Messages_ChannelAccountId_ExternalId",
                table: "Messages",
                columns: new[] { "ChannelAccountId", "ExternalId" },
                unique: true,
                filter: "\"ExternalId\" IS NOT NULL");
        }
    }
}
