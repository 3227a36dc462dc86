using System.Security.Cryptography;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Grains;

/// <summary>Holds one channel account's settings in memory, so the hot inbound path verifies signatures without a query.</summary>
public sealed class ChannelAccountGrain(ICrmStore store, TimeProvider time) : Grain, IChannelAccountGrain
{
    private ChannelAccountRecord? _record;

    public override async Task OnActivateAsync(CancellationToken cancellationToken) =>
        _record = await store.FindChannelAccountAsync(this.GetPrimaryKeyString(), cancellationToken);

    public Task<ChannelAccountSnapshot?> GetAsync() => Task.FromResult(_record?.ToSnapshot());

    public async Task<ChannelAccountSnapshot> ConfigureAsync(ChannelAccountSettings settings, CancellationToken cancellationToken = default)
    {
        var id = this.GetPrimaryKeyString();
        if (!GrainKeys.IsValidChannelAccountId(id))
            throw new DomainException(DomainErrorKind.Invalid, "A channel id is 1-64 lower-case letters, digits or '-'.", "id");
        if (string.IsNullOrWhiteSpace(settings.Name))
            throw new DomainException(DomainErrorKind.Invalid, "A channel needs a name.", "name");
        if (settings.WebhookUrl is { } url && (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
            throw new DomainException(DomainErrorKind.Invalid, "webhookUrl must be an absolute http(s) URL.", "webhookUrl");
        if (_record is not null && _record.Kind != settings.Kind)
            throw new DomainException(DomainErrorKind.Conflict, $"Channel '{id}' is a {_record.Kind} channel; its kind cannot change.", "kind");

        var now = time.GetUtcNow();
        var isNew = _record is null;
        var record = _record ?? new ChannelAccountRecord { Id = id, Name = settings.Name, CreatedAt = now };
        record.Kind = settings.Kind;
        record.Name = settings.Name.Trim();
        record.Enabled = settings.Enabled;
        record.WebhookUrl = settings.WebhookUrl;
        record.Secret = settings.Secret ?? record.Secret ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        record.UpdatedAt = now;
        await store.CommitAsync(isNew ? new WriteSet().Insert(record.Copy()) : new WriteSet().Update(record.Copy()), cancellationToken);
        _record = record;
        return record.ToSnapshot();
    }
}
