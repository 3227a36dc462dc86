using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Grains;

/// <summary>Resolves one channel identity to its customer. Being non-reentrant is what makes concurrent first
/// messages from one new address produce exactly one customer.</summary>
public sealed class IdentityGrain(ICrmStore store, TimeProvider time) : Grain, IIdentityGrain
{
    private IdentityRecord? _record;

    public override async Task OnActivateAsync(CancellationToken cancellationToken) =>
        _record = await store.FindIdentityAsync(this.GetPrimaryKeyString(), cancellationToken);

    public async Task<Guid> ResolveCustomerAsync(string? displayName, CancellationToken cancellationToken = default)
    {
        if (_record is not null)
            return _record.CustomerId;

        // First contact: the customer and the identity row are written in one commit.
        var now = time.GetUtcNow();
        var customer = new CustomerRecord { Id = Guid.CreateVersion7(now), Name = Clean(displayName), CreatedAt = now, UpdatedAt = now };
        var identity = NewRecord(customer.Id, now);
        await store.CommitAsync(new WriteSet()
            .Insert(customer)
            .Insert(identity.Copy())
            .Insert(Audit.Customer(customer.Id, "created", Audit.System, now, "identity", null, identity.Key)), cancellationToken);
        _record = identity;
        return customer.Id;
    }

    public Task<Guid?> GetCustomerAsync() => Task.FromResult(_record?.CustomerId);

    public async Task<Guid> LinkIfFreeAsync(Guid customerId, string actor, CancellationToken cancellationToken = default)
    {
        if (_record is not null)
            return _record.CustomerId;
        // Non-reentrant: no other link can run between this check and the commit. The insert's unique key settles a
        // duplicate activation elsewhere (DuplicateKeyException, the caller's transient error).
        await LinkToCustomerAsync(customerId, actor, cancellationToken);
        return customerId;
    }

    public async Task LinkToCustomerAsync(Guid customerId, string actor, CancellationToken cancellationToken = default)
    {
        if (_record?.CustomerId == customerId)
            return;
        var now = time.GetUtcNow();
        var writes = new WriteSet();
        IdentityRecord next;
        if (_record is null)
        {
            next = NewRecord(customerId, now);
            writes.Insert(next.Copy());
        }
        else
        {
            writes.Insert(Audit.Customer(_record.CustomerId, "identity-moved", actor, now, "identity", _record.Key, customerId.ToString()));
            next = _record.Copy();
            next.CustomerId = customerId;
            next.LinkedAt = now;
            writes.Update(next.Copy());
        }
        writes.Insert(Audit.Customer(customerId, "identity-linked", actor, now, "identity", null, next.Key));
        await store.CommitAsync(writes, cancellationToken);
        _record = next;
    }

    public async Task<Guid> DetachAsync(string actor, CancellationToken cancellationToken = default)
    {
        if (_record is null)
            throw new DomainException(DomainErrorKind.NotFound, $"Identity '{this.GetPrimaryKeyString()}' is not linked to any customer.", "identity");
        var now = time.GetUtcNow();
        var previous = _record.CustomerId;
        var customer = new CustomerRecord { Id = Guid.CreateVersion7(now), CreatedAt = now, UpdatedAt = now };
        var next = _record.Copy();
        next.CustomerId = customer.Id;
        next.LinkedAt = now;
        await store.CommitAsync(new WriteSet()
            .Insert(customer)
            .Update(next.Copy())
            .Insert(Audit.Customer(previous, "identity-detached", actor, now, "identity", next.Key, customer.Id.ToString()))
            .Insert(Audit.Customer(customer.Id, "created", actor, now, "identity", null, next.Key)), cancellationToken);
        _record = next;
        await GrainFactory.GetGrain<ICustomerGrain>(previous).IdentityChangedAsync();
        return customer.Id;
    }

    private IdentityRecord NewRecord(Guid customerId, DateTimeOffset now)
    {
        var key = this.GetPrimaryKeyString();
        var (kind, value) = ParseKey(key);
        return new IdentityRecord { Key = key, Kind = kind, Value = value, CustomerId = customerId, LinkedAt = now };
    }

    /// <summary>The inverse of <see cref="IdentityNormalizer.Key"/>: "email:a@b.c" → (Email, "a@b.c").</summary>
    internal static (IdentityKind Kind, string Value) ParseKey(string key)
    {
        var colon = key.IndexOf(':', StringComparison.Ordinal);
        var kind = key[..colon] switch
        {
            "email" => IdentityKind.Email,
            "phone" => IdentityKind.Phone,
            "telegram" => IdentityKind.Telegram,
            "webchat" => IdentityKind.WebChat,
            "external" => IdentityKind.External,
            var other => throw new FormatException($"Unknown identity kind '{other}' in key '{key}'."),
        };
        var value = key[(colon + 1)..];
        if (kind == IdentityKind.External)
            value = value[(value.IndexOf(':', StringComparison.Ordinal) + 1)..];
        return (kind, value);
    }

    private static string? Clean(string? name)
    {
        var trimmed = name?.Trim();
        return string.IsNullOrEmpty(trimmed) ? null : trimmed.Length > 200 ? trimmed[..200] : trimmed;
    }
}
