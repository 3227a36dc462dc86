using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Crm.Service.Infrastructure.Store.Migrations
{
    /// <inheritdoc />
    public partial class EmailConsoleRouting : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "LastAgentReplyAt",
                table: "Tickets",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Server",
                table: "MailboxCursors",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.CreateTable(
                name: "CannedResponses",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "TEXT", nullable: false),
                    OwnerId = table.Column<string>(type: "TEXT", nullable: false),
                    Shortcut = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    Title = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    Text = table.Column<string>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    UpdatedBy = table.Column<string>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_CannedResponses", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "Macros",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "TEXT", nullable: false),
                    OwnerId = table.Column<string>(type: "TEXT", nullable: false),
                    Name = table.Column<string>(type: "TEXT", nullable: false),
                    Actions = table.Column<string>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    UpdatedBy = table.Column<string>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Macros", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "RoutingDocuments",
                columns: table => new
                {
                    Kind = table.Column<string>(type: "TEXT", nullable: false),
                    Id = table.Column<string>(type: "TEXT", nullable: false),
                    Json = table.Column<string>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_RoutingDocuments", x => new { x.Kind, x.Id });
                });

            migrationBuilder.CreateTable(
                name: "TicketChannels",
                columns: table => new
                {
                    TicketNumber = table.Column<long>(type: "INTEGER", nullable: false),
                    ChannelAccountId = table.Column<string>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_TicketChannels", x => new { x.TicketNumber, x.ChannelAccountId });
                });

            migrationBuilder.CreateTable(
                name: "TicketTags",
                columns: table => new
                {
                    TicketNumber = table.Column<long>(type: "INTEGER", nullable: false),
                    Tag = table.Column<string>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_TicketTags", x => new { x.TicketNumber, x.Tag });
                });

            migrationBuilder.CreateIndex(
                name: "IX_CannedResponses_OwnerId_Shortcut",
                table: "CannedResponses",
                columns: new[] { "OwnerId", "Shortcut" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_Macros_OwnerId_Name",
                table: "Macros",
                columns: new[] { "OwnerId", "Name" });

            migrationBuilder.CreateIndex(
                name: "IX_TicketChannels_ChannelAccountId_UpdatedAt_TicketNumber",
                table: "TicketChannels",
                columns: new[] { "ChannelAccountId", "UpdatedAt", "TicketNumber" });

            migrationBuilder.CreateIndex(
                name: "IX_TicketTags_Tag_UpdatedAt_TicketNumber",
                table: "TicketTags",
                columns: new[] { "Tag", "UpdatedAt", "TicketNumber" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "CannedResponses");

            migrationBuilder.DropTable(
                name: "Macros");

            migrationBuilder.DropTable(
                name: "RoutingDocuments");

            migrationBuilder.DropTable(
                name: "TicketChannels");

            migrationBuilder.DropTable(
                name: "TicketTags");

            migrationBuilder.DropColumn(
                name: "LastAgentReplyAt",
                table: "Tickets");

            migrationBuilder.DropColumn(
                name: "Server",
                table: "MailboxCursors");
        }
    }
}
