using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Crm.Service.Infrastructure.Store.Migrations
{
    /// <inheritdoc />
    public partial class CodesKeysTombstones : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_AutomaticMail_Recipient_CreatedAtMs",
                table: "AutomaticMail");

            migrationBuilder.AddColumn<long>(
                name: "DeletedAtMs",
                table: "QuarantinedMail",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "RecipientKey",
                table: "AutomaticMail",
                type: "TEXT",
                maxLength: 320,
                nullable: false,
                defaultValue: "");

            // Rows claimed before the key existed count under their lower-cased address.
            migrationBuilder.Sql("UPDATE AutomaticMail SET RecipientKey = Recipient WHERE RecipientKey = '';");

            migrationBuilder.CreateTable(
                name: "DataProtectionKeys",
                columns: table => new
                {
                    Id = table.Column<int>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    FriendlyName = table.Column<string>(type: "TEXT", nullable: true),
                    Xml = table.Column<string>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_DataProtectionKeys", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "WebChatBudgetEvents",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    Key = table.Column<string>(type: "TEXT", maxLength: 400, nullable: false),
                    At = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_WebChatBudgetEvents", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "WebChatPendingCodes",
                columns: table => new
                {
                    WidgetId = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    VisitorId = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    Email = table.Column<string>(type: "TEXT", maxLength: 320, nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    Hash = table.Column<byte[]>(type: "BLOB", nullable: false),
                    Expires = table.Column<long>(type: "INTEGER", nullable: false),
                    TriesLeft = table.Column<int>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_WebChatPendingCodes", x => new { x.WidgetId, x.VisitorId });
                });

            migrationBuilder.CreateIndex(
                name: "IX_AutomaticMail_ChannelAccountId_CreatedAtMs",
                table: "AutomaticMail",
                columns: new[] { "ChannelAccountId", "CreatedAtMs" });

            migrationBuilder.CreateIndex(
                name: "IX_AutomaticMail_RecipientKey_CreatedAtMs",
                table: "AutomaticMail",
                columns: new[] { "RecipientKey", "CreatedAtMs" });

            migrationBuilder.CreateIndex(
                name: "IX_WebChatBudgetEvents_At",
                table: "WebChatBudgetEvents",
                column: "At");

            migrationBuilder.CreateIndex(
                name: "IX_WebChatBudgetEvents_Key_At",
                table: "WebChatBudgetEvents",
                columns: new[] { "Key", "At" });

            migrationBuilder.CreateIndex(
                name: "IX_WebChatPendingCodes_Expires",
                table: "WebChatPendingCodes",
                column: "Expires");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "DataProtectionKeys");

            migrationBuilder.DropTable(
                name: "WebChatBudgetEvents");

            migrationBuilder.DropTable(
                name: "WebChatPendingCodes");

            migrationBuilder.DropIndex(
                name: "IX_AutomaticMail_ChannelAccountId_CreatedAtMs",
                table: "AutomaticMail");

            migrationBuilder.DropIndex(
                name: "IX_AutomaticMail_RecipientKey_CreatedAtMs",
                table: "AutomaticMail");

            migrationBuilder.DropColumn(
                name: "DeletedAtMs",
                table: "QuarantinedMail");

            migrationBuilder.DropColumn(
                name: "RecipientKey",
                table: "AutomaticMail");

            migrationBuilder.CreateIndex(
                name: "IX_AutomaticMail_Recipient_CreatedAtMs",
                table: "AutomaticMail",
                columns: new[] { "Recipient", "CreatedAtMs" });
        }
    }
}
