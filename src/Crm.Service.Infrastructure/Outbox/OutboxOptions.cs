using System.ComponentModel.DataAnnotations;

namespace Crm.Service.Infrastructure.Outbox;

/// <summary>How the outbox retries outbound messages (section "Outbox").</summary>
public sealed class OutboxOptions
{
    public const string Section = "Outbox";

    /// <summary>How often the outbox looks for due retries when nothing wakes it.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);

    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    [Range(typeof(TimeSpan), "00:00:00.010", "7.00:00:00")]
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>After this many failed attempts the message is marked failed.</summary>
    [Range(1, 1000)]
    public int MaxAttempts { get; set; } = 25;

    /// <summary>How long one send may take before it is given up and retried, for a message without files.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan SendTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The slowest upload a send with files is allowed before it is given up: each file adds its size at this
    /// rate to <see cref="SendTimeout"/>, so a large reply is not cut off (and sent again) while it is still going out.</summary>
    [Range(1_000, 1_000_000_000)]
    public int MinUploadBytesPerSecond { get; set; } = 50_000;

    /// <summary>The time allowed for a send carrying <paramref name="fileBytes"/> bytes of files.</summary>
    public TimeSpan SendTimeoutFor(long fileBytes) => SendTimeout + TimeSpan.FromSeconds((double)fileBytes / MinUploadBytesPerSecond);

    [Range(1, 256)]
    public int MaxParallelSends { get; set; } = 8;

    /// <summary>Exponential backoff with ±20% jitter, so a recovering endpoint is not hit by every retry at once.</summary>
    public TimeSpan DelayAfter(int attempts)
    {
        var exponent = Math.Min(attempts - 1, 30);
        var delay = Math.Min(FirstRetryDelay.TotalMilliseconds * Math.Pow(2, exponent), MaxRetryDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(delay * (0.8 + Random.Shared.NextDouble() * 0.4));
    }
}
