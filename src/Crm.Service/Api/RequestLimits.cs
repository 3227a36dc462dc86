using Crm.Connectors.Abstractions;
using Crm.Service.Contracts;

namespace Crm.Service.Api;

/// <summary>A request body that knows the limits of its own fields (see <see cref="Grains.InputLimits"/>).</summary>
public interface ILimitedRequest
{
    /// <summary>Throws a <see cref="DomainException"/> of kind Invalid naming the first field over its limit.</summary>
    void CheckLimits();
}

/// <summary>Refuses a body over its limits with a 422 naming the field before any grain is called, so a null tag or a
/// megabyte of custom field never reaches the domain (which checks again) and never becomes a 500.</summary>
internal sealed class RequestLimitsFilter : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        foreach (var request in context.Arguments.OfType<ILimitedRequest>())
        {
            try
            {
                request.CheckLimits();
            }
            catch (DomainException refused)
            {
                return Problems.From(refused);
            }
        }
        return await next(context);
    }
}
