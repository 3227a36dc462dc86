using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Crm.Service.Infrastructure.Store;

/// <summary>
/// Durability applied to every connection: with WAL (set once on the file by <see cref="StoreInitializer"/>),
/// synchronous=FULL fsyncs the log on every commit, as Postfix does before it answers 250. Speed comes from
/// group commit, never from relaxing this. busy_timeout lets SQLite itself wait for the write lock in short steps
/// (without it, Microsoft.Data.Sqlite retries with coarse sleeps that stall first contacts by hundreds of ms).
/// </summary>
internal sealed class SqlitePragmas : DbConnectionInterceptor
{
    internal const string Statements = "PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000;";

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Apply(connection);

    public override async Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = Statements;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static void Apply(DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = Statements;
        command.ExecuteNonQuery();
    }
}
