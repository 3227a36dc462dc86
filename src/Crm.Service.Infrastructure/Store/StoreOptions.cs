using System.ComponentModel.DataAnnotations;

namespace Crm.Service.Infrastructure.Store;

/// <summary>Where and how the embedded store keeps its data (section "Store").</summary>
public sealed class StoreOptions
{
    public const string Section = "Store";

    /// <summary>Folder for the SQLite file and the blobs; created on start.</summary>
    [Required(AllowEmptyStrings = false)]
    public string DataDirectory { get; set; } = "data";

    [Required(AllowEmptyStrings = false)]
    public string DatabaseFile { get; set; } = "crm.db";

    /// <summary>Most write sets committed in one transaction (group commit).</summary>
    [Range(1, 10_000)]
    public int MaxBatchSize { get; set; } = 1000;

    [Range(1, long.MaxValue)]
    public long FirstTicketNumber { get; set; } = 10001;

    /// <summary>Ticket numbers reserved per round trip to the sequence row. The reservation is a write transaction of
    /// its own that waits for the commit loop, so a large block keeps first contacts fast; embedded mode reclaims
    /// the unused rest on start.</summary>
    [Range(1, 1000)]
    public int TicketNumberBlock { get; set; } = 200;

    /// <summary>How often blobs no row names are deleted (left by a crash between a blob's put and its row); zero: never,
    /// the default until the sweep re-checks a blob's age and writers take its gate across nodes (review KW1: a blob
    /// written again during a sweep can be deleted as an orphan).</summary>
    public TimeSpan BlobSweepInterval { get; set; } = TimeSpan.Zero;

    /// <summary>Blobs younger than this are spared by the sweep: mail ingest writes the bytes before committing the row.</summary>
    public TimeSpan BlobSweepGrace { get; set; } = TimeSpan.FromHours(1);

    public string DatabasePath => Path.GetFullPath(Path.Combine(DataDirectory, DatabaseFile));

    public string BlobDirectory => Path.GetFullPath(Path.Combine(DataDirectory, "blobs"));

    /// <summary>The Data Protection key ring that encrypts channel secrets; back it up with the database.</summary>
    public string KeyDirectory => Path.GetFullPath(Path.Combine(DataDirectory, "keys"));

    /// <summary>The key (base64, 32 bytes) that encrypts the Data Protection key ring in the database. Empty: a random
    /// key kept in <see cref="KeyRingKeyPath"/>, created on first start. Back it up apart from the database.</summary>
    public string? KeyRingKey { get; set; }

    public string KeyRingKeyPath => DatabasePath + ".keyring-key";

    public string ConnectionString => $"Data Source={DatabasePath};Pooling=True;Default Timeout=30";
}
