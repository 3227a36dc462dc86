using System.Net;
using System.Net.Http.Json;
using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;
using Crm.Service.Grains.Records;
using Crm.Service.Grains.Storage;
using Crm.Service.Infrastructure.Channels;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Crm.Service.Tests.Connectors;

public sealed class ChannelDirectoryTests : IDisposable
{
    private readonly TempDirectory _data = new();

    public void Dispose() => _data.Dispose();

    private static object Message(string id) => new { messageId = id, sender = new { id = "+15550102030", kind = "phone" }, text = "hi" };

    [Fact]
    public async Task The_directory_applies_channel_changes_handed_to_it_by_the_change_feed()
    {
        await using var app = new CrmApp(_data.Path);
        await app.CreateApiChannelAsync();
        var directory = app.Services.GetRequiredService<ChannelAccountDirectory>();
        var secrets = app.Services.GetRequiredService<ISecretProtector>();
        var consumer = app.Services.GetServices<IChangeConsumer>().Single(c => c is ChannelAccountDirectory);
        var seen = new List<ChannelAccountChange>();
        directory.Changed += seen.Add;
        // Another node's write: the row changes here only through the store.
        await app.QueryAsync(async db =>
        {
            db.ChannelAccounts.Add(new ChannelAccountRecord { Id = "other-node", Kind = ChannelKind.Api, Name = "Made elsewhere", Secret = secrets.Protect("other-node-secret-0123456789"), UpdatedAt = DateTimeOffset.UtcNow });
            return await db.SaveChangesAsync();
        });
        Assert.Null(directory.Find("other-node"));

        Change[] created = [new Change(1, ChangeEntities.ChannelAccount, "other-node", ChangeKinds.Created, DateTimeOffset.UtcNow)];
        await consumer.HandleAsync(created, default);
        await consumer.HandleAsync(created, default);

        Assert.Equal("other-node-secret-0123456789", directory.Find("other-node")?.Secret);
        Assert.Contains(directory.EnabledOf(ChannelKind.Api), a => a.Id == "other-node");
        Assert.Single(seen, c => c.Before is null && c.After?.Id == "other-node");
        Assert.Equal(HttpStatusCode.Accepted, (await app.PostMessageAsync(Message("n-1"), "other-node", "other-node-secret-0123456789")).StatusCode);

        await app.QueryAsync(db => db.ChannelAccounts.Where(c => c.Id == "other-node").ExecuteUpdateAsync(s => s.SetProperty(c => c.Enabled, false).SetProperty(c => c.UpdatedAt, DateTimeOffset.UtcNow.AddSeconds(1))));
        await consumer.HandleAsync([new Change(2, ChangeEntities.ChannelAccount, "other-node", ChangeKinds.Updated, DateTimeOffset.UtcNow)], default);

        Assert.DoesNotContain(directory.EnabledOf(ChannelKind.Api), a => a.Id == "other-node");
        Assert.Equal(HttpStatusCode.Forbidden, (await app.PostMessageAsync(Message("n-2"), "other-node", "other-node-secret-0123456789")).StatusCode);
    }

    [Fact]
    public async Task A_change_stamped_earlier_than_the_one_applied_after_the_clock_stepped_back_is_still_applied()
    {
        await using var app = new CrmApp(_data.Path);
        await app.CreateApiChannelAsync();
        var directory = app.Services.GetRequiredService<ChannelAccountDirectory>();
        var applied = directory.Find("bridge")!.UpdatedAt;

        // An admin disables the channel on a node whose clock is an hour behind.
        await app.QueryAsync(db => db.ChannelAccounts.Where(c => c.Id == "bridge").ExecuteUpdateAsync(s => s.SetProperty(c => c.Enabled, false).SetProperty(c => c.UpdatedAt, applied.AddHours(-1))));
        await directory.HandleAsync([new Change(1, ChangeEntities.ChannelAccount, "bridge", ChangeKinds.Updated, DateTimeOffset.UtcNow)], default);

        Assert.False(directory.Find("bridge")!.Enabled);
        Assert.Equal(HttpStatusCode.Forbidden, (await app.PostMessageAsync(Message("skew-1"))).StatusCode);
    }

    [Fact]
    public async Task A_plaintext_secret_from_an_older_database_still_verifies_and_is_encrypted_on_the_next_write()
    {
        const string legacySecret = "legacy-plain-secret-0123456789";
        await using (var before = new CrmApp(_data.Path))
        {
            await before.CreateApiChannelAsync();
            // What an older version left in the row: the secret in plain text, the webhook URL in its own column.
            await before.QueryAsync(db => db.ChannelAccounts.Where(c => c.Id == "bridge").ExecuteUpdateAsync(s => s
                .SetProperty(c => c.Secret, legacySecret).SetProperty(c => c.Settings, (string?)null).SetProperty(c => c.WebhookUrl, "https://example.com/old-hook")));
        }
        await using var app = new CrmApp(_data.Path);
        using var admin = app.Admin();

        var accepted = await app.PostMessageAsync(Message("old-1"), secret: legacySecret);
        var view = await admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/v1/admin/channels/bridge");
        (await admin.PutAsJsonAsync("/api/v1/admin/channels/bridge", new { kind = "api", name = "Renamed", webhookUrl = "https://example.com/old-hook" })).EnsureSuccessStatusCode();
        var stored = await app.QueryAsync(db => db.ChannelAccounts.AsNoTracking().SingleAsync(c => c.Id == "bridge"));

        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        Assert.Equal("https://example.com/old-hook", view.GetProperty("settings").GetProperty("webhookUrl").GetString());
        Assert.StartsWith(ProtectedSecrets.Marker, stored.Secret, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Accepted, (await app.PostMessageAsync(Message("old-2"), secret: legacySecret)).StatusCode);
    }

    [Fact]
    public async Task A_plaintext_secret_from_an_older_database_is_encrypted_at_the_next_start_without_any_admin_write()
    {
        const string legacySecret = "legacy-plain-secret-9876543210";
        await using (var before = new CrmApp(_data.Path))
        {
            await before.CreateApiChannelAsync();
            await before.QueryAsync(db => db.ChannelAccounts.Where(c => c.Id == "bridge").ExecuteUpdateAsync(s => s.SetProperty(c => c.Secret, legacySecret)));
        }
        await using var app = new CrmApp(_data.Path);
        using var admin = app.Admin();
        var updatedBefore = (await admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/v1/admin/channels/bridge")).GetProperty("updatedAt").GetDateTimeOffset();

        var stored = await Eventually.WaitForAsync(() => app.QueryAsync(db => db.ChannelAccounts.AsNoTracking().SingleAsync(c => c.Id == "bridge")),
            c => c.Secret is { } s && ProtectedSecrets.IsProtected(s), what: "the legacy secret to be encrypted at rest");

        Assert.DoesNotContain(legacySecret, stored.Secret!, StringComparison.Ordinal);
        Assert.Equal(updatedBefore, stored.UpdatedAt);
        Assert.Equal(HttpStatusCode.Accepted, (await app.PostMessageAsync(Message("old-3"), secret: legacySecret)).StatusCode);
    }
}
