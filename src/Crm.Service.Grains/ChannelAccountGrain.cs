using System.Security.Cryptography;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;

namespace Crm.Service.Grains;

/// <summary>
/// The single writer of one channel account's row: configuration, secret rotation and health. Secrets are protected
/// here, before they reach the store, and never leave in a snapshot. Every change is made on a copy that replaces the
/// kept record only after the commit succeeded, so a failed commit leaves the grain as it was.
/// </summary>
public sealed class ChannelAccountGrain(ICrmStore store, ISecretProtector secrets, TimeProvider time) : Grain, IChannelAccountGrain
{
    private const int MaxErrorLength = 1000;

    /// <summary>The field a stale <see cref="ChannelAccountSettings.ExpectedUpdatedAt"/> is refused at.</summary>
    public const string StaleField = "updatedAt";
    private ChannelAccountRecord? _record;

    public override async Task OnActivateAsync(CancellationToken cancellationToken) =>
        _record = await store.FindChannelAccountAsync(this.GetPrimaryKeyString(), cancellationToken);

    public Task<ChannelAccountSnapshot?> GetAsync() => Task.FromResult(_record?.ToSnapshot());

    public async Task<ChannelAccountConfigured> ConfigureAsync(ChannelAccountSettings settings, CancellationToken cancellationToken = default)
    {
        var id = this.GetPrimaryKeyString();
        if (!GrainKeys.IsValidChannelAccountId(id))
            throw new DomainException(DomainErrorKind.Invalid, "A channel id is 1-64 lower-case letters, digits or '-'.", "id");
        if (string.IsNullOrWhiteSpace(settings.Name))
            throw new DomainException(DomainErrorKind.Invalid, "A channel needs a name.", "name");
        if (_record is not null && _record.Kind != settings.Kind)
            throw new DomainException(DomainErrorKind.Conflict, $"Channel '{id}' is a {_record.Kind} channel; its kind cannot change.", "kind");
        if (settings.ExpectedUpdatedAt is { } expected && (_record is null || _record.UpdatedAt.UtcTicks != expected.UtcTicks))
            throw new DomainException(DomainErrorKind.Conflict, $"Channel '{id}' was changed meanwhile; reload it and apply the change again.", StaleField);

        var now = time.GetUtcNow();
        var isNew = _record is null;
        var record = _record?.Copy() ?? new ChannelAccountRecord { Id = id, Name = settings.Name, CreatedAt = now };
        record.Kind = settings.Kind;
        record.Name = settings.Name.Trim();
        record.Enabled = settings.Enabled;
        record.Settings = settings.Settings;
        record.WebhookUrl = null;
        string? issued = null;
        if (settings.Secret is not null)
            record.Secret = secrets.Protect(settings.Secret);
        else if (record.Secret is null)
            record.Secret = secrets.Protect(issued = NewSecret());
        else
            record.Secret = Reprotect(record.Secret);
        foreach (var (name, value) in record.SecretSettings)
            record.SecretSettings[name] = Reprotect(value);
        foreach (var (name, value) in settings.SecretSettings)
            record.SecretSettings[name] = secrets.Protect(value);
        record.UpdatedAt = now;

        await store.CommitAsync(isNew ? new WriteSet().Insert(record.Copy()) : new WriteSet().Update(record.Copy()), cancellationToken);
        _record = record;
        // Only a secret we generated is shown, once; one the caller chose they have already, and echoing it would put
        // it in one more answer (and log, and proxy).
        return new ChannelAccountConfigured(record.ToSnapshot(), isNew, issued);
    }

    public async Task<ChannelAccountConfigured> RotateSecretAsync(CancellationToken cancellationToken = default)
    {
        if (_record is null)
            throw new DomainException(DomainErrorKind.NotFound, $"No channel '{this.GetPrimaryKeyString()}'.", "id");
        var secret = NewSecret();
        var record = _record.Copy();
        record.Secret = secrets.Protect(secret);
        record.UpdatedAt = time.GetUtcNow();
        await store.CommitAsync(new WriteSet().Update(record.Copy(), nameof(ChannelAccountRecord.Secret), nameof(ChannelAccountRecord.UpdatedAt)), cancellationToken);
        _record = record;
        return new ChannelAccountConfigured(record.ToSnapshot(), Created: false, secret);
    }

    public async Task ReportHealthAsync(ChannelHealthReport report, CancellationToken cancellationToken = default)
    {
        if (_record is null)
            return;
        var record = _record.Copy();
        string[] columns;
        if (report.Error is null)
        {
            if (record.LastSuccessAt >= report.At)
                return;
            record.LastSuccessAt = report.At;
            columns = [nameof(ChannelAccountRecord.LastSuccessAt)];
        }
        else
        {
            if (record.LastErrorAt >= report.At)
                return;
            record.LastErrorAt = report.At;
            record.LastError = report.Error.Length <= MaxErrorLength ? report.Error : report.Error[..MaxErrorLength];
            columns = [nameof(ChannelAccountRecord.LastErrorAt), nameof(ChannelAccountRecord.LastError)];
        }
        // Only the health columns: a report never rewrites the configuration.
        await store.CommitAsync(new WriteSet().Update(record.Copy(), columns), cancellationToken);
        _record = record;
    }

    public async Task<bool> ProtectStoredSecretsAsync(CancellationToken cancellationToken = default)
    {
        if (_record is null)
            return false;
        var record = _record.Copy();
        if (record.Secret is { } secret)
            record.Secret = Reprotect(secret);
        foreach (var (name, value) in _record.SecretSettings)
            record.SecretSettings[name] = Reprotect(value);
        if (record.Secret == _record.Secret && record.SecretSettings.All(s => _record.SecretSettings[s.Key] == s.Value))
            return false;
        // Only the secret columns: the configuration and its UpdatedAt are the admin's.
        await store.CommitAsync(new WriteSet().Update(record.Copy(), nameof(ChannelAccountRecord.Secret), nameof(ChannelAccountRecord.SecretSettings)), cancellationToken);
        _record = record;
        return true;
    }

    /// <summary>A value from an older database is plain text; protect it now that the row is written anyway.</summary>
    private string Reprotect(string stored) => ProtectedSecrets.IsProtected(stored) ? stored : secrets.Protect(stored);

    private static string NewSecret() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
}
