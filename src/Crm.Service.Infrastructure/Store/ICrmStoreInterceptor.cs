using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Crm.Service.Infrastructure.Store;

/// <summary>
/// An EF Core interceptor that joins every <see cref="CrmDbContext"/> when registered under this type (tests use it to
/// fault a command). Only this marker is collected, not every <see cref="IInterceptor"/> in the container: an
/// interceptor a library registers for its own context must not see, or rewrite, the store's commands, which carry
/// channel secrets and the Identity tables (review LE5).
/// </summary>
public interface ICrmStoreInterceptor : IInterceptor;
