using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Crm.Service.Infrastructure.Store.Migrations
{
    /// <inheritdoc />
    public partial class LeasesVisitorsKeysAttachments : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "AutomaticMail",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "TEXT", nullable: false),
                    ChannelAccountId = table.Column<string>(type: "TEXT", nullable: false),
                    Kind = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    TicketNumber = table.Column<long>(type: "INTEGER", nullable: false),
                    Recipient = table.Column<string>(type: "TEXT", maxLength: 320, nullable: false),
                    RecipientName = table.Column<string>(type: "TEXT", nullable: true),
                    InReplyTo = table.Column<string>(type: "TEXT", nullable: true),
                    Subject = table.Column<string>(type: "TEXT", nullable: true),
                    Language = table.Column<string>(type: "TEXT", nullable: false),
                    State = table.Column<int>(type: "INTEGER", nullable: false),
                    Attempts = table.Column<int>(type: "INTEGER", nullable: false),
                    CreatedAtMs = table.Column<long>(type: "INTEGER", nullable: false),
                    NextAttemptAtMs = table.Column<long>(type: "INTEGER", nullable: false),
                    SentAtMs = table.Column<long>(type: "INTEGER", nullable: true),
                    Error = table.Column<string>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_AutomaticMail", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "ConnectorLeases",
                columns: table => new
                {
                    Key = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    Holder = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    ExpiresAt = table.Column<long>(type: "INTEGER", nullable: false),
                    Generation = table.Column<long>(type: "INTEGER", nullable: false),
                    AcquiredAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ConnectorLeases", x => x.Key);
                });

            migrationBuilder.CreateTable(
                name: "KbAttachments",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "TEXT", nullable: false),
                    ArticleId = table.Column<Guid>(type: "TEXT", nullable: false),
                    FileName = table.Column<string>(type: "TEXT", nullable: false),
                    ContentType = table.Column<string>(type: "TEXT", nullable: false),
                    Size = table.Column<long>(type: "INTEGER", nullable: false),
                    Sha256 = table.Column<string>(type: "TEXT", nullable: false),
                    UploadedBy = table.Column<string>(type: "TEXT", nullable: false),
                    UploadedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_KbAttachments", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "RequestKeys",
                columns: table => new
                {
                    Key = table.Column<string>(type: "TEXT", maxLength: 400, nullable: false),
                    TicketNumber = table.Column<long>(type: "INTEGER", nullable: false),
                    At = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_RequestKeys", x => x.Key);
                });

            migrationBuilder.CreateTable(
                name: "WebChatVisitors",
                columns: table => new
                {
                    WidgetId = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    VisitorId = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    Generation = table.Column<int>(type: "INTEGER", nullable: false),
                    GraceGeneration = table.Column<int>(type: "INTEGER", nullable: true),
                    GraceUntil = table.Column<long>(type: "INTEGER", nullable: true),
                    Blocked = table.Column<bool>(type: "INTEGER", nullable: false),
                    BlockReason = table.Column<string>(type: "TEXT", maxLength: 500, nullable: true),
                    VerifiedEmail = table.Column<string>(type: "TEXT", maxLength: 320, nullable: true),
                    VerifiedAt = table.Column<long>(type: "INTEGER", nullable: true),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_WebChatVisitors", x => new { x.WidgetId, x.VisitorId });
                });

            migrationBuilder.CreateIndex(
                name: "IX_Tickets_Assignee_Status_CreatedAt",
                table: "Tickets",
                columns: new[] { "Assignee", "Status", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_Tickets_Assignee_Status_Priority_UpdatedAt",
                table: "Tickets",
                columns: new[] { "Assignee", "Status", "Priority", "UpdatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_Tickets_Team_Status_CreatedAt",
                table: "Tickets",
                columns: new[] { "Team", "Status", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_Tickets_Team_Status_Priority_UpdatedAt",
                table: "Tickets",
                columns: new[] { "Team", "Status", "Priority", "UpdatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_AutomaticMail_ChannelAccountId_Kind_TicketNumber",
                table: "AutomaticMail",
                columns: new[] { "ChannelAccountId", "Kind", "TicketNumber" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_AutomaticMail_Recipient_CreatedAtMs",
                table: "AutomaticMail",
                columns: new[] { "Recipient", "CreatedAtMs" });

            migrationBuilder.CreateIndex(
                name: "IX_AutomaticMail_State_NextAttemptAtMs",
                table: "AutomaticMail",
                columns: new[] { "State", "NextAttemptAtMs" });

            migrationBuilder.CreateIndex(
                name: "IX_KbAttachments_ArticleId",
                table: "KbAttachments",
                column: "ArticleId");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "AutomaticMail");

            migrationBuilder.DropTable(
                name: "ConnectorLeases");

            migrationBuilder.DropTable(
                name: "KbAttachments");

            migrationBuilder.DropTable(
                name: "RequestKeys");

            migrationBuilder.DropTable(
                name: "WebChatVisitors");

            migrationBuilder.DropIndex(
                name: "IX_Tickets_Assignee_Status_CreatedAt",
                table: "Tickets");

            migrationBuilder.DropIndex(
                name: "IX_Tickets_Assignee_Status_Priority_UpdatedAt",
                table: "Tickets");

            migrationBuilder.DropIndex(
                name: "IX_Tickets_Team_Status_CreatedAt",
                table: "Tickets");

            migrationBuilder.DropIndex(
                name: "IX_Tickets_Team_Status_Priority_UpdatedAt",
                table: "Tickets");
        }
    }
}
