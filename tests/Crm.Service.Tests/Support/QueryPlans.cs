using System.Data.Common;
using System.Text.RegularExpressions;
using Crm.Service.Infrastructure.Store;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Support;

/// <summary>SQLite's EXPLAIN QUERY PLAN of an EF query, its steps joined by " | ", to prove which index a read uses.</summary>
internal static class QueryPlans
{
    public static async Task<string> ExplainAsync<T>(CrmDbContext db, IQueryable<T> query)
    {
        // ToQueryString declares the parameters as ".param set @name value" lines; inline them for EXPLAIN.
        var text = query.ToQueryString();
        var parameters = Regex.Matches(text, @"^\.param set (@\w+) (.*)$", RegexOptions.Multiline).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value.TrimEnd('\r'));
        var sql = string.Join('\n', text.Split('\n').Where(l => !l.StartsWith(".param", StringComparison.Ordinal)));
        foreach (var (name, value) in parameters.OrderByDescending(p => p.Key.Length))
            sql = sql.Replace(name, value, StringComparison.Ordinal);
        return await ExplainSqlAsync(db, sql);
    }

    /// <summary>The plan of SQL text as EF logged it; parameters it still names are bound to 0 (the plan does not depend on them).</summary>
    public static async Task<string> ExplainSqlAsync(CrmDbContext db, string sql)
    {
        var connection = db.Database.GetDbConnection();
        await db.Database.OpenConnectionAsync();
        await using DbCommand command = connection.CreateCommand();
        command.CommandText = "EXPLAIN QUERY PLAN " + sql;
        foreach (var name in Regex.Matches(sql, @"@\w+").Select(m => m.Value).Distinct())
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = 0;
            command.Parameters.Add(parameter);
        }
        var details = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            details.Add(reader.GetString(3));
        return string.Join(" | ", details);
    }
}
