namespace Crm.Service.Infrastructure.Changes;

/// <summary>How far one consumer of the change feed got (table ChangeCursors): every change up to
/// <see cref="Sequence"/> was handled. Written only after the consumer's HandleAsync returned.</summary>
public sealed class ChangeCursorRecord
{
    public required string Consumer { get; set; }
    public long Sequence { get; set; }
}

/// <summary>A running index rebuild's hold on the feed's pruning (table RebuildHolds, review LG1/LG2): changes after
/// <see cref="Sequence"/> are kept on every node while it exists. One row per run, named
/// <c>{consumer}#rebuilding:{node}:{run}</c>, so nodes sharing one index (Elasticsearch) never overwrite or delete each
/// other's hold. <see cref="Since"/> is refreshed while the run lives; a hold not refreshed for
/// max(Retention, 1 day) is a dead node's and is removed by pruning.</summary>
public sealed class RebuildHoldRecord
{
    public required string Name { get; set; }
    public required string Consumer { get; set; }
    public required string Node { get; set; }
    public long Sequence { get; set; }
    public DateTimeOffset Since { get; set; }
}
