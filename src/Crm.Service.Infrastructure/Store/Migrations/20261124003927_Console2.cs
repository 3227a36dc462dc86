using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Crm.Service.Infrastructure.Store.Migrations
{
    /// <inheritdoc />
    public partial class Console2 : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
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
                name: "TicketChannels");

            migrationBuilder.DropTable(
                name: "TicketTags");
        }
    }
}
