using Crm.Service.AgentConsole;
using Crm.Service.Infrastructure.Notifications;
using Microsoft.AspNetCore.Mvc;

namespace Crm.Service.Pages.Profile;

/// <summary>Notification settings: which hub notifications this person gets.</summary>
public sealed partial class IndexModel
{
    public NotificationSettingsRecord Notifications { get; private set; } = null!;

    [BindProperty] public bool NotifyAssignment { get; set; }
    [BindProperty] public bool NotifyMention { get; set; }
    [BindProperty] public bool NotifyFollowUpDue { get; set; }
    [BindProperty] public bool NotifyNewTicket { get; set; }

    private NotificationSettingsStore NotificationStore => HttpContext.RequestServices.GetRequiredService<NotificationSettingsStore>();

    public async Task<IActionResult> OnPostNotificationsAsync(CancellationToken cancellationToken)
    {
        await NotificationStore.SaveAsync(new NotificationSettingsRecord
        {
            UserId = TicketAccess.UserId(User),
            Assignment = NotifyAssignment,
            Mention = NotifyMention,
            FollowUpDue = NotifyFollowUpDue,
            NewTicketInMyTeams = NotifyNewTicket,
        }, cancellationToken);
        return Redirect("/Profile");
    }
}
