using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Crm.Service.Infrastructure.Store.Migrations
{
    /// <inheritdoc />
    public partial class WipIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_Tickets_Assignee_UpdatedAt",
                table: "Tickets",
                columns: new[] { "Assignee", "UpdatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_Tickets_Team_UpdatedAt",
                table: "Tickets",
                columns: new[] { "Team", "UpdatedAt" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Tickets_Assignee_UpdatedAt",
                table: "Tickets");

            migrationBuilder.DropIndex(
                name: "IX_Tickets_Team_UpdatedAt",
                table: "Tickets");
        }
    }
}
