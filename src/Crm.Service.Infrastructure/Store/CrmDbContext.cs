using System.Text.Json;
using Crm.Service.Grains.Records;
using Crm.Service.Infrastructure.Changes;
using Crm.Service.Infrastructure.Mailboxes;
using Crm.Service.Infrastructure.Teams;
using Crm.Service.Infrastructure.CustomerEvents;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Crm.Service.Infrastructure.Store;

/// <summary>The system of record. Grains write through <see cref="SqliteCrmStore"/>; the console and the API query it directly.
/// The console's people and roles (ASP.NET Core Identity's AspNet* tables) live here too, so one file is backed up.</summary>
public sealed class CrmDbContext(DbContextOptions<CrmDbContext> options) : IdentityDbContext<IdentityUser, IdentityRole, string>(options), Microsoft.AspNetCore.DataProtection.EntityFrameworkCore.IDataProtectionKeyContext
{
    public DbSet<CustomerRecord> Customers => Set<CustomerRecord>();
    public DbSet<IdentityRecord> Identities => Set<IdentityRecord>();
    public DbSet<ConversationRecord> Conversations => Set<ConversationRecord>();
    public DbSet<TicketRecord> Tickets => Set<TicketRecord>();
    public DbSet<MessageRecord> Messages => Set<MessageRecord>();
    public DbSet<AttachmentRecord> Attachments => Set<AttachmentRecord>();
    public DbSet<RawSourceRecord> RawSources => Set<RawSourceRecord>();
    public DbSet<AuditRecord> Audit => Set<AuditRecord>();
    public DbSet<RequestKeyRecord> RequestKeys => Set<RequestKeyRecord>();
    public DbSet<OutboxRecord> Outbox => Set<OutboxRecord>();
    public DbSet<ChannelAccountRecord> ChannelAccounts => Set<ChannelAccountRecord>();
    public DbSet<ApiKeyRecord> ApiKeys => Set<ApiKeyRecord>();
    public DbSet<ReminderRecord> Reminders => Set<ReminderRecord>();
    public DbSet<SequenceRecord> Sequences => Set<SequenceRecord>();
    public DbSet<ChangeRecord> Changes => Set<ChangeRecord>();
    public DbSet<ChangeCursorRecord> ChangeCursors => Set<ChangeCursorRecord>();
    public DbSet<RebuildHoldRecord> RebuildHolds => Set<RebuildHoldRecord>();
    public DbSet<MailboxCursorRecord> MailboxCursors => Set<MailboxCursorRecord>();
    public DbSet<QuarantinedMailRecord> QuarantinedMail => Set<QuarantinedMailRecord>();
    public DbSet<AutomaticMailRecord> AutomaticMail => Set<AutomaticMailRecord>();
    public DbSet<TeamRecord> Teams => Set<TeamRecord>();
    public DbSet<TeamMemberRecord> TeamMembers => Set<TeamMemberRecord>();
    public DbSet<Routing.RoutingDocumentRecord> RoutingDocuments => Set<Routing.RoutingDocumentRecord>();
    public DbSet<CustomerEventRecord> CustomerEvents => Set<CustomerEventRecord>();
    public DbSet<TicketLinks.TicketLinkRecord> TicketLinks => Set<TicketLinks.TicketLinkRecord>();
    public DbSet<Documents.CustomerDocumentRecord> CustomerDocuments => Set<Documents.CustomerDocumentRecord>();
    public DbSet<Notifications.NotificationSettingsRecord> NotificationSettings => Set<Notifications.NotificationSettingsRecord>();
    public DbSet<Notifications.NoticeRecord> Notices => Set<Notifications.NoticeRecord>();
    public DbSet<KnowledgeBase.ArticleRecord> KbArticles => Set<KnowledgeBase.ArticleRecord>();
    public DbSet<KnowledgeBase.ArticleRevisionRecord> KbRevisions => Set<KnowledgeBase.ArticleRevisionRecord>();
    public DbSet<KnowledgeBase.CategoryRecord> KbCategories => Set<KnowledgeBase.CategoryRecord>();
    public DbSet<Queries.TicketTagRecord> TicketTags => Set<Queries.TicketTagRecord>();
    public DbSet<Queries.TicketChannelRecord> TicketChannels => Set<Queries.TicketChannelRecord>();
    public DbSet<Replies.CannedResponseRecord> CannedResponses => Set<Replies.CannedResponseRecord>();
    public DbSet<Replies.MacroRecord> Macros => Set<Replies.MacroRecord>();
    public DbSet<Crm.Service.Grains.Storage.ConnectorLeaseRecord> ConnectorLeases => Set<Crm.Service.Grains.Storage.ConnectorLeaseRecord>();
    public DbSet<WebChat.WebChatVisitorRecord> WebChatVisitors => Set<WebChat.WebChatVisitorRecord>();
    public DbSet<WebChat.WebChatPendingCodeRecord> WebChatPendingCodes => Set<WebChat.WebChatPendingCodeRecord>();
    public DbSet<WebChat.WebChatBudgetEventRecord> WebChatBudgetEvents => Set<WebChat.WebChatBudgetEventRecord>();
    /// <summary>The Data Protection key ring, shared by every node on this store (see <c>ChannelAccountExtensions</c>).</summary>
    public DbSet<Microsoft.AspNetCore.DataProtection.EntityFrameworkCore.DataProtectionKey> DataProtectionKeys => Set<Microsoft.AspNetCore.DataProtection.EntityFrameworkCore.DataProtectionKey>();

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // UTC ticks as INTEGER: SQLite can then order and compare times (it cannot with EF's default TEXT).
        configurationBuilder.Properties<DateTimeOffset>().HaveConversion<UtcTicksConverter>();
        configurationBuilder.Properties<DateTimeOffset?>().HaveConversion<UtcTicksConverter>();
        configurationBuilder.Properties<Enum>().HaveConversion<int>();
    }

    protected override void OnModelCreating(ModelBuilder model)
    {
        base.OnModelCreating(model);
        model.Entity<CustomerRecord>(e =>
        {
            e.ToTable("Customers");
            e.HasKey(c => c.Id);
            e.Property(c => c.CustomFields).HasConversion(
                v => JsonSerializer.Serialize(v, JsonSerializerOptions.Default),
                v => JsonSerializer.Deserialize<Dictionary<string, string>>(v, JsonSerializerOptions.Default) ?? new(),
                new ValueComparer<Dictionary<string, string>>(
                    (a, b) => a!.Count == b!.Count && !a.Except(b).Any(),
                    v => v.Aggregate(0, (hash, pair) => HashCode.Combine(hash, pair.Key.GetHashCode(), pair.Value.GetHashCode())),
                    v => new Dictionary<string, string>(v)));
            e.HasIndex(c => c.Name);
        });
        model.Entity<IdentityRecord>(e =>
        {
            e.ToTable("Identities");
            e.HasKey(i => i.Key);
            e.HasIndex(i => i.CustomerId);
            // The console's search finds a customer by an email address or phone number.
            e.HasIndex(i => i.Value);
        });
        model.Entity<ConversationRecord>(e =>
        {
            e.ToTable("Conversations");
            e.HasKey(c => c.Id);
            e.HasIndex(c => c.Key).IsUnique();
            e.HasIndex(c => c.CustomerId);
            e.HasIndex(c => c.TicketNumber);
        });
        model.Entity<TicketRecord>(e =>
        {
            e.ToTable("Tickets");
            e.HasKey(t => t.Number);
            e.Property(t => t.Number).ValueGeneratedNever();
            // Queue views: each filter combination the API offers has an index ending in the sort key.
            e.HasIndex(t => new { t.Status, t.UpdatedAt });
            e.HasIndex(t => new { t.Assignee, t.Status, t.UpdatedAt });
            e.HasIndex(t => new { t.Team, t.Status, t.UpdatedAt });
            // "Mine" and a team's queue across statuses read in order too, rather than sorting every row per page.
            e.HasIndex(t => new { t.Assignee, t.UpdatedAt });
            e.HasIndex(t => new { t.Team, t.UpdatedAt });
            // A customer has few tickets: no sort key, so activity does not rewrite this index.
            e.HasIndex(t => t.CustomerId);
            e.HasIndex(t => t.UpdatedAt);
            // The console's other sorts: newest created, and priority then latest activity.
            e.HasIndex(t => new { t.Status, t.CreatedAt });
            e.HasIndex(t => new { t.Status, t.Priority, t.UpdatedAt });
            // The created and priority orders of the Mine, Unassigned and team queues (one status at a time, see
            // TicketQueries.Parts): each reads its index in order instead of sorting the queue.
            e.HasIndex(t => new { t.Assignee, t.Status, t.CreatedAt });
            e.HasIndex(t => new { t.Assignee, t.Status, t.Priority, t.UpdatedAt });
            e.HasIndex(t => new { t.Team, t.Status, t.CreatedAt });
            e.HasIndex(t => new { t.Team, t.Status, t.Priority, t.UpdatedAt });
        });
        model.Entity<MessageRecord>(e =>
        {
            e.ToTable("Messages");
            e.HasKey(m => m.Id);
            // Inbound dedupe only; outbound channel ids live in OutboundExternalId and are not unique.
            e.HasIndex(m => new { m.ChannelAccountId, m.ExternalId }).IsUnique().HasFilter("\"ExternalId\" IS NOT NULL AND \"Direction\" = 0");
            e.Property(m => m.OutboundExternalId).HasMaxLength(255);
            e.Property(m => m.RequestHash).HasMaxLength(64);
            e.HasIndex(m => m.IdempotencyKey).IsUnique().HasFilter("\"IdempotencyKey\" IS NOT NULL");
            e.HasIndex(m => new { m.TicketNumber, m.CreatedAt });
            e.HasIndex(m => m.ConversationId);
        });
        model.Entity<AttachmentRecord>(e =>
        {
            e.ToTable("Attachments");
            e.HasKey(a => a.Id);
            e.HasIndex(a => a.MessageId);
            e.HasIndex(a => a.Sha256);
        });
        model.Entity<RawSourceRecord>(e =>
        {
            e.ToTable("RawSources");
            e.HasKey(r => r.MessageId);
        });
        model.Entity<RequestKeyRecord>(e =>
        {
            e.ToTable("RequestKeys");
            e.HasKey(k => k.Key);
            e.Property(k => k.Key).HasMaxLength(Grains.InputLimits.MaxRequestIdLength);
            // Pruning deletes by age a chunk at a time; without it each chunk scans the table (review CR5).
            e.HasIndex(k => k.At);
        });
        model.Entity<AuditRecord>(e =>
        {
            e.ToTable("Audit");
            e.HasKey(a => a.Id);
            e.HasIndex(a => new { a.EntityType, a.EntityId, a.At });
        });
        model.Entity<OutboxRecord>(e =>
        {
            e.ToTable("Outbox");
            e.HasKey(o => o.Id);
            e.HasIndex(o => new { o.State, o.NextAttemptAt });
        });
        model.Entity<ChannelAccountRecord>(e =>
        {
            e.ToTable("ChannelAccounts");
            e.HasKey(c => c.Id);
            // Rows from before the column read "" (its migration default) as no secret settings.
            e.Property(c => c.SecretSettings).HasConversion(
                v => JsonSerializer.Serialize(v, JsonSerializerOptions.Default),
                v => v == "" ? new() : JsonSerializer.Deserialize<Dictionary<string, string>>(v, JsonSerializerOptions.Default) ?? new(),
                new ValueComparer<Dictionary<string, string>>((a, b) => a!.Count == b!.Count && !a.Except(b).Any(), v => v.Count, v => new Dictionary<string, string>(v)));
        });
        model.Entity<ApiKeyRecord>(e =>
        {
            e.ToTable("ApiKeys");
            e.HasKey(k => k.Id);
            e.HasIndex(k => k.KeyHash).IsUnique();
            e.HasIndex(k => k.OwnerId);
        });
        model.Entity<ReminderRecord>(e =>
        {
            e.ToTable("Reminders");
            e.HasKey(r => new { r.GrainId, r.Name });
            e.HasIndex(r => r.GrainHash);
        });
        model.Entity<SequenceRecord>(e =>
        {
            e.ToTable("Sequences");
            e.HasKey(s => s.Name);
        });
        // The change feed (docs/architecture.md): AUTOINCREMENT, so a sequence is never reused after pruning.
        model.Entity<ChangeRecord>(e =>
        {
            e.ToTable("Changes");
            e.HasKey(c => c.Sequence);
            e.Property(c => c.Sequence).ValueGeneratedOnAdd().HasAnnotation("Sqlite:Autoincrement", true);
        });
        model.Entity<ChangeCursorRecord>(e =>
        {
            e.ToTable("ChangeCursors");
            e.HasKey(c => c.Consumer);
        });
        model.Entity<RebuildHoldRecord>(e =>
        {
            e.ToTable("RebuildHolds");
            e.HasKey(h => h.Name);
            e.HasIndex(h => h.Node);
        });
        model.Entity<WebChat.WebChatVisitorRecord>(e =>
        {
            e.ToTable("WebChatVisitors");
            e.HasKey(v => new { v.WidgetId, v.VisitorId });
            e.Property(v => v.WidgetId).HasMaxLength(64);
            e.Property(v => v.VisitorId).HasMaxLength(64);
            e.Property(v => v.BlockReason).HasMaxLength(500);
            e.Property(v => v.VerifiedEmail).HasMaxLength(320);
        });
        model.Entity<WebChat.WebChatPendingCodeRecord>(e =>
        {
            e.ToTable("WebChatPendingCodes");
            e.HasKey(c => new { c.WidgetId, c.VisitorId });
            e.Property(c => c.WidgetId).HasMaxLength(64);
            e.Property(c => c.VisitorId).HasMaxLength(64);
            e.Property(c => c.Email).HasMaxLength(320);
            e.Property(c => c.Name).HasMaxLength(200);
            e.HasIndex(c => c.Expires);
        });
        model.Entity<WebChat.WebChatBudgetEventRecord>(e =>
        {
            e.ToTable("WebChatBudgetEvents");
            e.HasKey(b => b.Id);
            e.Property(b => b.Key).HasMaxLength(400);
            e.HasIndex(b => new { b.Key, b.At });
            e.HasIndex(b => b.At);
        });
        model.Entity<MailboxCursorRecord>(e =>
        {
            e.ToTable("MailboxCursors");
            e.HasKey(c => new { c.ChannelAccountId, c.Folder });
            e.Property(c => c.Server).HasMaxLength(64);
        });
        model.Entity<QuarantinedMailRecord>(e =>
        {
            e.ToTable("QuarantinedMail");
            e.HasKey(q => q.Id);
            e.HasIndex(q => new { q.ChannelAccountId, q.Sha256 }).IsUnique();
            e.HasIndex(q => q.At);
        });
        model.Entity<AutomaticMailRecord>(e =>
        {
            e.ToTable("AutomaticMail");
            e.HasKey(a => a.Id);
            // Once per ticket and kind; the cap counts a recipient's recent mails; the sender reads what is due.
            e.HasIndex(a => new { a.ChannelAccountId, a.Kind, a.TicketNumber }).IsUnique();
            e.HasIndex(a => new { a.RecipientKey, a.CreatedAtMs });
            e.HasIndex(a => new { a.ChannelAccountId, a.CreatedAtMs });
            e.HasIndex(a => new { a.State, a.NextAttemptAtMs });
            e.Property(a => a.Recipient).HasMaxLength(320);
            e.Property(a => a.RecipientKey).HasMaxLength(320);
            e.Property(a => a.Kind).HasMaxLength(40);
        });
        model.Entity<TeamRecord>(e =>
        {
            e.ToTable("Teams");
            e.HasKey(t => t.Id);
            e.Property(t => t.Id).HasMaxLength(64);
            e.Property(t => t.Name).HasMaxLength(TeamDirectory.MaxNameLength);
        });
        model.Entity<TeamMemberRecord>(e =>
        {
            e.ToTable("TeamMembers");
            e.HasKey(m => new { m.TeamId, m.UserId });
            e.HasIndex(m => m.UserId);
        });
        model.Entity<TicketLinks.TicketLinkRecord>(e =>
        {
            e.ToTable("TicketLinks");
            e.HasKey(x => new { x.From, x.To });
            e.HasIndex(x => x.To);
        });
        model.Entity<Documents.CustomerDocumentRecord>(e =>
        {
            e.ToTable("CustomerDocuments");
            e.HasKey(x => x.Id);
            e.HasIndex(x => new { x.CustomerId, x.UploadedAt });
            e.HasIndex(x => x.Sha256);
        });
        model.Entity<Blobs.BlobHoldRecord>(e =>
        {
            e.ToTable("BlobHolds");
            e.HasKey(x => x.Id);
            e.HasIndex(x => new { x.Sha256, x.Deleting });
        });
        model.Entity<Notifications.NotificationSettingsRecord>(e =>
        {
            e.ToTable("NotificationSettings");
            e.HasKey(x => x.UserId);
        });
        model.Entity<Notifications.NoticeRecord>(e =>
        {
            e.ToTable("Notices");
            e.HasKey(x => x.Id);
            // One notice per person and cause (idempotent stores); the page and the bell read by person.
            e.HasIndex(x => new { x.UserId, x.Cause }).IsUnique();
            e.HasIndex(x => new { x.UserId, x.ReadAt });
            e.HasIndex(x => new { x.UserId, x.Id });
        });
        model.Entity<CustomerEventRecord>(e =>
        {
            e.ToTable("CustomerEvents");
            e.HasKey(x => x.Id);
            e.HasIndex(x => new { x.CustomerId, x.ClientEventId }).IsUnique();
            e.HasIndex(x => new { x.CustomerId, x.At });
            e.Property(x => x.Amount).HasConversion<string>();
        });
        model.Entity<Routing.RoutingDocumentRecord>(e =>
        {
            e.ToTable("RoutingDocuments");
            e.HasKey(d => new { d.Kind, d.Id });
        });
        KnowledgeBase.KnowledgeBaseModel.Configure(model);
        Queries.TicketProjections.Configure(model);
        Replies.ReplyLibrary.Configure(model);
        Leases.ConnectorLeaseModel.Configure(model);
    }

    private sealed class UtcTicksConverter() : ValueConverter<DateTimeOffset, long>(
        v => v.UtcTicks,
        v => new DateTimeOffset(v, TimeSpan.Zero));
}

/// <summary>An Orleans reminder row (see <see cref="Reminders.SqliteReminderTable"/>).</summary>
public sealed class ReminderRecord
{
    public required string GrainId { get; set; }
    public required string Name { get; set; }
    /// <summary>The grain's uniform hash, for the range reads each silo's reminder service makes.</summary>
    public long GrainHash { get; set; }
    public long StartAtUtcTicks { get; set; }
    public long PeriodTicks { get; set; }
    public required string ETag { get; set; }
}

public sealed class SequenceRecord
{
    public required string Name { get; set; }
    public long Next { get; set; }
}
