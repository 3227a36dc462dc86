using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Crm.Service.Infrastructure.Store.Migrations
{
    /// <inheritdoc />
    public partial class WipConnectors : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
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
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
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
        }
    }
}
