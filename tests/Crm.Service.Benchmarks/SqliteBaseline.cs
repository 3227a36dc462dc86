using System.Diagnostics;
using Microsoft.Data.Sqlite;

namespace Crm.Service.Benchmarks;

/// <summary>The raw insert rate of this machine's SQLite at the service's durability (WAL, synchronous=FULL),
/// for rows shaped like a stored message: one commit per row, and commits of 100 rows.</summary>
internal static class SqliteBaseline
{
    public static (double SingleCommitsPerSecond, double BatchedRowsPerSecond) Measure(string directory, TimeSpan duration)
    {
        var path = Path.Combine(directory, "baseline.db");
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        Execute(connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
        Execute(connection, """
            CREATE TABLE Messages (Id TEXT PRIMARY KEY, ChannelAccountId TEXT, ExternalId TEXT, TicketNumber INTEGER,
                Author TEXT, Text TEXT, CreatedAt INTEGER);
            CREATE UNIQUE INDEX IX_Ext ON Messages (ChannelAccountId, ExternalId);
            CREATE INDEX IX_Ticket ON Messages (TicketNumber, CreatedAt);
            """);
        using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO Messages VALUES ($id, 'bench', $ext, $ticket, 'external:bench:someone', $text, $at)";
        var id = insert.Parameters.Add("$id", SqliteType.Text);
        var ext = insert.Parameters.Add("$ext", SqliteType.Text);
        var ticket = insert.Parameters.Add("$ticket", SqliteType.Integer);
        var text = insert.Parameters.Add("$text", SqliteType.Text);
        var at = insert.Parameters.Add("$at", SqliteType.Integer);
        var n = 0;
        void Row()
        {
            n++;
            id.Value = Guid.CreateVersion7().ToString();
            ext.Value = "ext-" + n;
            ticket.Value = 10001 + n % 1000;
            text.Value = "benchmark message number " + n + " with a sentence of ordinary length in it";
            at.Value = DateTime.UtcNow.Ticks;
            insert.ExecuteNonQuery();
        }

        double Rate(int rowsPerCommit)
        {
            var rows = 0;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < duration)
            {
                using var transaction = connection.BeginTransaction();
                insert.Transaction = transaction;
                for (var i = 0; i < rowsPerCommit; i++)
                    Row();
                transaction.Commit();
                rows += rowsPerCommit;
            }
            return rows / clock.Elapsed.TotalSeconds;
        }

        return (Rate(1), Rate(100));
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
