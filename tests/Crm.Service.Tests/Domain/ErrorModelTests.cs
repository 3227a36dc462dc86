using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;

namespace Crm.Service.Tests.Domain;

/// <summary>One map from problem kind to status, title and type: every kind has its own, every domain kind reaches one.</summary>
public sealed class ErrorModelTests
{
    [Fact]
    public void Every_problem_kind_has_its_own_status_and_type()
    {
        var described = Enum.GetValues<ProblemKind>().Select(Problems.Describe).ToList();
        Assert.Equal(described.Count, described.Select(d => d.Status).Distinct().Count());
        Assert.Equal(described.Count, described.Select(d => d.Slug).Distinct().Count());
        Assert.All(described, d => Assert.InRange(d.Status, 400, 499));
    }

    [Theory]
    [InlineData(DomainErrorKind.Invalid, 422, "urn:crm:problem:invalid")]
    [InlineData(DomainErrorKind.NotFound, 404, "urn:crm:problem:not-found")]
    [InlineData(DomainErrorKind.Conflict, 409, "urn:crm:problem:conflict")]
    [InlineData(DomainErrorKind.TooLarge, 413, "urn:crm:problem:too-large")]
    [InlineData(DomainErrorKind.Forbidden, 403, "urn:crm:problem:forbidden")]
    public void A_domain_refusal_becomes_one_problem(DomainErrorKind kind, int status, string type)
    {
        var details = Problems.From(new DomainException(kind, "why", "field")).ProblemDetails;
        Assert.Equal(status, details.Status);
        Assert.Equal(type, details.Type);
        Assert.Equal("why", details.Detail);
        Assert.Equal("field", details.Extensions["field"]);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("$", null)]
    [InlineData("$.sender.id", "sender.id")]
    [InlineData("$.attachments[0].fileName", "attachments[0].fileName")]
    public void A_json_path_names_the_field(string? path, string? field) => Assert.Equal(field, Problems.FieldOf(path));
}
