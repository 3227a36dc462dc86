using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Crm.Service.Infrastructure.Store.Migrations
{
    /// <inheritdoc />
    public partial class RebuildHolds : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "RebuildHolds",
                columns: table => new
                {
                    Name = table.Column<string>(type: "TEXT", nullable: false),
                    Consumer = table.Column<string>(type: "TEXT", nullable: false),
                    Node = table.Column<string>(type: "TEXT", nullable: false),
                    Sequence = table.Column<long>(type: "INTEGER", nullable: false),
                    Since = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_RebuildHolds", x => x.Name);
                });

            migrationBuilder.CreateIndex(
                name: "IX_RebuildHolds_Node",
                table: "RebuildHolds",
                column: "Node");

            // --- Hand-written (review LG1/LG2): the holds of the previous version were notes "{consumer}#rebuilding" in
            // ChangeCursors, which pruning no longer reads; a left-behind one would only sit there. Removed.
            migrationBuilder.Sql("DELETE FROM ChangeCursors WHERE Consumer LIKE '%#rebuilding';");
            // --- end hand-written
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "RebuildHolds");
        }
    }
}
