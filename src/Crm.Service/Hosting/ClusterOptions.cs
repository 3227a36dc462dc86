using System.ComponentModel.DataAnnotations;

namespace Crm.Service.Hosting;

/// <summary>How this process joins the Orleans cluster (section "Cluster"). The embedded default is one silo on localhost.</summary>
public sealed class CrmClusterOptions
{
    public const string Section = "Cluster";

    [Range(1, 65535)]
    public int SiloPort { get; set; } = 11111;

    [Range(1, 65535)]
    public int GatewayPort { get; set; } = 30000;

    [Required(AllowEmptyStrings = false)]
    public string ClusterId { get; set; } = "crm";

    [Required(AllowEmptyStrings = false)]
    public string ServiceId { get; set; } = "crm-service";
}
