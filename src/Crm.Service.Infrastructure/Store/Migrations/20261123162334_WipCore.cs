using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Crm.Service.Infrastructure.Store.Migrations
{
    /// <inheritdoc />
    public partial class WipCore : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
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
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "OutboundExternalId",
                table: "Messages");

            migrationBuilder.DropColumn(
                name: "RequestHash",
                table: "Messages");
        }
    }
}
