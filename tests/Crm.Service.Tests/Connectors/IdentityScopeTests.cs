using System.Net.Http.Json;
using System.Text.Json;
using Crm.Service.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace Crm.Service.Tests.Connectors;

/// <summary>Defect 14: an API bridge's claim to be an email address or a phone number.</summary>
public sealed class IdentityScopeTests : AppTest
{
    private async Task TrustedChannelAsync(string id, params string[] kinds)
    {
        using var admin = App.Admin();
        (await admin.PutAsJsonAsync($"/api/v1/admin/channels/{id}", new { kind = "api", name = id, secret = CrmApp.ChannelSecret, settings = new { trustedIdentityKinds = kinds } })).EnsureSuccessStatusCode();
    }

    private async Task<Guid> CustomerOfAsync(string channel, string messageId, string kind, string sender)
    {
        var response = await App.PostMessageAsync(new { messageId, sender = new { id = sender, kind }, text = "hello" }, channel);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("customerId").GetGuid();
    }

    [Fact]
    public async Task An_untrusted_bridge_posting_as_an_email_address_does_not_join_that_customer()
    {
        await TrustedChannelAsync("mail-gateway", "email");
        var ceo = await CustomerOfAsync("mail-gateway", "m-1", "email", "ceo@client.com");

        var impostor = await CustomerOfAsync("bridge", "b-1", "email", "CEO@Client.com");
        var impostorAgain = await CustomerOfAsync("bridge", "b-2", "email", "ceo@client.com");

        Assert.NotEqual(ceo, impostor);
        Assert.Equal(impostor, impostorAgain);
        Assert.True(await App.QueryAsync(db => db.Identities.AnyAsync(i => i.Key == "external:bridge:email:ceo@client.com")));
        Assert.Equal(1, await App.QueryAsync(db => db.Identities.CountAsync(i => i.Key == "email:ceo@client.com")));
    }

    [Fact]
    public async Task A_bridge_trusted_for_email_joins_the_customer_and_stays_scoped_for_phone()
    {
        await TrustedChannelAsync("mail-gateway", "email");
        await TrustedChannelAsync("crm-sync", "email");
        var ceo = await CustomerOfAsync("mail-gateway", "m-1", "email", "ceo@client.com");
        var phoneElsewhere = await CustomerOfAsync("mail-gateway", "m-2", "phone", "+15550102030");

        Assert.Equal(ceo, await CustomerOfAsync("crm-sync", "s-1", "email", "ceo@client.com"));
        Assert.NotEqual(phoneElsewhere, await CustomerOfAsync("crm-sync", "s-2", "phone", "+1 555 010 2030"));
    }

    [Fact]
    public async Task Changing_a_bridges_trust_starts_new_conversations_instead_of_refusing_its_contacts()
    {
        await TrustedChannelAsync("gateway");
        var scoped = await CustomerOfAsync("gateway", "t-1", "email", "kim@client.com");

        await TrustedChannelAsync("gateway", "email");
        var trusted = await CustomerOfAsync("gateway", "t-2", "email", "kim@client.com");
        await TrustedChannelAsync("gateway");
        var scopedAgain = await CustomerOfAsync("gateway", "t-3", "email", "kim@client.com");

        Assert.NotEqual(scoped, trusted);
        Assert.Equal(scoped, scopedAgain);
        // A redelivery after the change is still recognised.
        var again = await App.PostMessageAsync(new { messageId = "t-2", sender = new { id = "kim@client.com", kind = "email" }, text = "hello" }, "gateway");
        Assert.True((await again.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("duplicate").GetBoolean());
    }

    [Theory]
    [InlineData("messageId")]
    [InlineData("sender.id")]
    [InlineData("threadKey")]
    public async Task Ids_with_line_breaks_controls_or_bidi_overrides_are_refused(string field)
    {
        var evil = "x\n999 a b c\u202Egnp.exe";
        object body = field switch
        {
            "messageId" => new { messageId = evil, sender = new { id = "u-1" }, text = "hi" },
            "sender.id" => new { messageId = "c-1", sender = new { id = evil }, text = "hi" },
            _ => new { messageId = "c-1", sender = new { id = "u-1" }, threadKey = evil, text = "hi" },
        };

        var response = await App.PostMessageAsync(body);

        Assert.Equal(System.Net.HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal(field, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("field").GetString());
    }

    [Fact]
    public async Task A_null_trust_list_is_no_trust_not_a_server_error()
    {
        using var admin = App.Admin();
        var response = await admin.PutAsync("/api/v1/admin/channels/nulls", new StringContent(
            "{\"kind\":\"api\",\"name\":\"n\",\"settings\":{\"trustedIdentityKinds\":null}}", System.Text.Encoding.UTF8, "application/json"));

        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }
}
