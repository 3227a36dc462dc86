using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Grains;

/// <summary>A customer's profile and the identities linked to it. Merges move identities, conversations and
/// tickets here and are recorded in the audit of both customers; each step is idempotent, so a merge
/// interrupted by a crash completes when it is requested again.</summary>
public sealed class CustomerGrain(ICrmStore store, TimeProvider time) : Grain, ICustomerGrain
{
    private const int MergeWindow = 64;

    private CustomerRecord? _record;
    private List<IdentityRecord> _identities = [];

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _record = await store.FindCustomerAsync(this.GetPrimaryKey(), cancellationToken);
        if (_record is not null)
            _identities = [.. await store.FindIdentitiesOfCustomerAsync(_record.Id, cancellationToken)];
    }

    public Task<CustomerSnapshot?> GetAsync() => Task.FromResult(_record?.ToSnapshot(_identities));

    public async Task<CustomerSnapshot> UpdateProfileAsync(CustomerProfileChange change, string actor, CancellationToken cancellationToken = default)
    {
        // Changed on a copy, swapped in after the commit: a failed commit leaves the activation as the database is.
        var record = Existing().Copy();
        InputLimits.CheckProfileChange(change, record.CustomFields);
        var now = time.GetUtcNow();
        var writes = new WriteSet();
        void Set(string field, string? oldValue, string? newValue, Action<string?> apply)
        {
            if (newValue is null || newValue == oldValue)
                return;
            var value = newValue.Length == 0 ? null : newValue.Trim();
            apply(value);
            writes.Insert(Audit.Customer(record.Id, "changed", actor, now, field, oldValue, value));
        }
        Set("name", record.Name, change.Name, v => record.Name = v);
        Set("language", record.Language, change.Language, v => record.Language = v);
        Set("organization", record.Organization, change.Organization, v => record.Organization = v);
        Set("notes", record.Notes, change.Notes, v => record.Notes = v);
        if (change.Tags is { } tags)
        {
            var normalized = TextRules.NormalizeTags(tags);
            if (!normalized.SequenceEqual(record.Tags))
            {
                writes.Insert(Audit.Customer(record.Id, "changed", actor, now, "tags", string.Join(",", record.Tags), string.Join(",", normalized)));
                record.Tags = normalized;
            }
        }
        foreach (var (key, value) in change.CustomFields ?? new Dictionary<string, string?>())
        {
            record.CustomFields.TryGetValue(key, out var old);
            if (old == value)
                continue;
            if (value is null)
                record.CustomFields.Remove(key);
            else
                record.CustomFields[key] = value;
            writes.Insert(Audit.Customer(record.Id, "changed", actor, now, "custom." + key, old, value));
        }
        if (!writes.IsEmpty)
        {
            record.UpdatedAt = now;
            await store.CommitAsync(writes.Update(record.Copy()), cancellationToken);
            _record = record;
        }
        return record.ToSnapshot(_identities);
    }

    public async Task<CustomerSnapshot> MergeFromAsync(Guid sourceCustomerId, string actor, CancellationToken cancellationToken = default)
    {
        var record = Existing().Copy();
        if (sourceCustomerId == record.Id)
            throw new DomainException(DomainErrorKind.Invalid, "A customer cannot be merged into itself.", "sourceCustomerId");
        if (record.MergedInto is { } mergedInto)
            throw new DomainException(DomainErrorKind.Conflict, $"This customer was merged into {mergedInto}; merge into that one.", "customerId");

        var source = await GrainFactory.GetGrain<ICustomerGrain>(sourceCustomerId).MarkMergedIntoAsync(record.Id, actor, cancellationToken);
        // Identities and tickets are independent grains: a window of them at once lets the store commit their rows in
        // a few group commits instead of one fsync each (a customer with thousands of tickets merges in seconds).
        // Each call is idempotent, so a merge retried after a crash or a timeout finishes what is left.
        foreach (var window in source.Identities.Chunk(MergeWindow))
            await Task.WhenAll(window.Select(identity => GrainFactory.GetGrain<IIdentityGrain>(identity.Key).LinkToCustomerAsync(record.Id, actor, cancellationToken)));
        foreach (var window in (await store.FindTicketNumbersOfCustomerAsync(sourceCustomerId, cancellationToken)).Chunk(MergeWindow))
            await Task.WhenAll(window.Select(number => GrainFactory.GetGrain<ITicketGrain>(number).ChangeCustomerAsync(record.Id, actor, cancellationToken)));

        // The profile keeps this customer's values and fills gaps from the source.
        var now = time.GetUtcNow();
        record.Name ??= source.Name;
        record.Language ??= source.Language;
        record.Organization ??= source.Organization;
        record.Notes = string.Join("\n\n", new[] { record.Notes, source.Notes }.Where(n => !string.IsNullOrWhiteSpace(n)).Distinct());
        record.Notes = record.Notes.Length == 0 ? null : record.Notes;
        record.Tags = TextRules.MergeTags(record.Tags, source.Tags);
        TextRules.FillCustomFields(record.CustomFields, source.CustomFields);
        record.UpdatedAt = now;
        await store.CommitAsync(new WriteSet()
            .Update(record.Copy())
            .Add(new MoveCustomerConversations(sourceCustomerId, record.Id))
            .Insert(Audit.Customer(record.Id, "merged", actor, now, "customer", sourceCustomerId.ToString(), record.Id.ToString())), cancellationToken);
        _record = record;
        _identities = [.. await store.FindIdentitiesOfCustomerAsync(record.Id, cancellationToken)];
        return record.ToSnapshot(_identities);
    }

    public async Task<CustomerSnapshot> MarkMergedIntoAsync(Guid targetCustomerId, string actor, CancellationToken cancellationToken = default)
    {
        var record = _record?.Copy() ?? throw new DomainException(DomainErrorKind.NotFound, $"No customer {this.GetPrimaryKey()}.", "sourceCustomerId");
        if (record.MergedInto is { } existing && existing != targetCustomerId)
            throw new DomainException(DomainErrorKind.Conflict, $"Customer {record.Id} was already merged into {existing}.", "sourceCustomerId");
        if (record.MergedInto is null)
        {
            var now = time.GetUtcNow();
            record.MergedInto = targetCustomerId;
            record.UpdatedAt = now;
            await store.CommitAsync(new WriteSet()
                .Update(record.Copy())
                .Insert(Audit.Customer(record.Id, "merged-into", actor, now, "customer", record.Id.ToString(), targetCustomerId.ToString())), cancellationToken);
            _record = record;
        }
        return record.ToSnapshot(_identities);
    }

    public async Task IdentityChangedAsync()
    {
        if (_record is not null)
            _identities = [.. await store.FindIdentitiesOfCustomerAsync(_record.Id)];
    }

    private CustomerRecord Existing() =>
        _record ?? throw new DomainException(DomainErrorKind.NotFound, $"No customer {this.GetPrimaryKey()}.", "customerId");
}
