namespace Crm.Service.Infrastructure.Changes;

/// <summary>How far one consumer of the change feed got (table ChangeCursors): every change up to
/// <see cref="Sequence"/> was handled. Written only after the consumer's HandleAsync returned.</summary>
public sealed class ChangeCursorRecord
{
    public required string Consumer { get; set; }
    public long Sequence { get; set; }
}
