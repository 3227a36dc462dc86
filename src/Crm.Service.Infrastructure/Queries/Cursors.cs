using System.Buffers.Binary;
using System.Buffers.Text;
using Crm.Service.Contracts;

namespace Crm.Service.Infrastructure.Queries;

/// <summary>Which list a cursor belongs to: a cursor of one list handed to another is refused rather than read as a
/// position it never was.</summary>
public enum CursorKind : byte
{
    Queue = 1,
    Timeline = 2,
    History = 3,
    QueueByCreated = 4,
    QueueByPriority = 5,
}

/// <summary>The orders a ticket list can be read in; each has its own cursor kind, so a cursor of one order is refused by another.</summary>
public enum TicketSort
{
    /// <summary>Latest activity first (the API's order).</summary>
    Updated,
    /// <summary>Newest ticket first.</summary>
    Created,
    /// <summary>Most urgent first, then latest activity.</summary>
    Priority,
}

/// <summary>A position in a ticket list read in <see cref="Sort"/> order: <see cref="At"/> is the updated or created
/// time of the last row shown, <see cref="Priority"/> its priority (only for <see cref="TicketSort.Priority"/>).
/// <see cref="TicketSort.Updated"/> cursors are the same strings as <see cref="TicketCursor"/>'s.</summary>
public readonly record struct QueueCursor(TicketSort Sort, DateTimeOffset At, TicketPriority Priority, long Number)
{
    private const int Length = 1 + 8 + 8;

    public string Encode()
    {
        if (Sort == TicketSort.Updated)
            return new TicketCursor(At, Number).Encode();
        Span<byte> bytes = stackalloc byte[Length + (Sort == TicketSort.Priority ? 1 : 0)];
        bytes[0] = (byte)KindOf(Sort);
        BinaryPrimitives.WriteInt64BigEndian(bytes[1..], At.UtcTicks);
        BinaryPrimitives.WriteInt64BigEndian(bytes[9..], Number);
        if (Sort == TicketSort.Priority)
            bytes[17] = (byte)Priority;
        return Base64Url.EncodeToString(bytes);
    }

    public static bool TryDecode(string? text, TicketSort sort, out QueueCursor cursor)
    {
        cursor = default;
        if (sort == TicketSort.Updated)
        {
            if (!TicketCursor.TryDecode(text, out var updated))
                return false;
            cursor = new QueueCursor(sort, updated.UpdatedAt, default, updated.Number);
            return true;
        }
        Span<byte> bytes = stackalloc byte[Length + (sort == TicketSort.Priority ? 1 : 0)];
        if (!Cursors.TryRead(text, KindOf(sort), bytes, out var at))
            return false;
        var number = BinaryPrimitives.ReadInt64BigEndian(bytes[9..]);
        var priority = sort == TicketSort.Priority ? (TicketPriority)bytes[17] : default;
        if (number < 1 || !Enum.IsDefined(priority))
            return false;
        cursor = new QueueCursor(sort, at, priority, number);
        return true;
    }

    private static CursorKind KindOf(TicketSort sort) => sort switch
    {
        TicketSort.Created => CursorKind.QueueByCreated,
        TicketSort.Priority => CursorKind.QueueByPriority,
        _ => CursorKind.Queue,
    };
}

/// <summary>A position in a ticket queue ordered by (updatedAt desc, number desc): the next page starts after it.</summary>
public readonly record struct TicketCursor(DateTimeOffset UpdatedAt, long Number)
{
    // kind, UTC ticks, number: 17 bytes, 23 characters of base64url.
    private const int Length = 1 + 8 + 8;

    public string Encode()
    {
        Span<byte> bytes = stackalloc byte[Length];
        bytes[0] = (byte)CursorKind.Queue;
        BinaryPrimitives.WriteInt64BigEndian(bytes[1..], UpdatedAt.UtcTicks);
        BinaryPrimitives.WriteInt64BigEndian(bytes[9..], Number);
        return Base64Url.EncodeToString(bytes);
    }

    /// <summary>False for anything this service did not produce as a queue cursor; never throws.</summary>
    public static bool TryDecode(string? text, out TicketCursor cursor)
    {
        cursor = default;
        Span<byte> bytes = stackalloc byte[Length];
        if (!Cursors.TryRead(text, CursorKind.Queue, bytes, out var at))
            return false;
        var number = BinaryPrimitives.ReadInt64BigEndian(bytes[9..]);
        if (number < 1)
            return false;
        cursor = new TicketCursor(at, number);
        return true;
    }
}

/// <summary>A position in a ticket's timeline (createdAt, id) or history (at, id), newest first: the next page is older.</summary>
public readonly record struct EntryCursor(DateTimeOffset At, Guid Id)
{
    // kind, UTC ticks, id: 25 bytes, 34 characters of base64url.
    private const int Length = 1 + 8 + 16;

    public string Encode(CursorKind kind)
    {
        Span<byte> bytes = stackalloc byte[Length];
        bytes[0] = (byte)kind;
        BinaryPrimitives.WriteInt64BigEndian(bytes[1..], At.UtcTicks);
        Id.TryWriteBytes(bytes[9..]);
        return Base64Url.EncodeToString(bytes);
    }

    public static bool TryDecode(string? text, CursorKind kind, out EntryCursor cursor)
    {
        cursor = default;
        Span<byte> bytes = stackalloc byte[Length];
        if (!Cursors.TryRead(text, kind, bytes, out var at))
            return false;
        cursor = new EntryCursor(at, new Guid(bytes[9..]));
        return true;
    }
}

internal static class Cursors
{
    /// <summary>Decodes exactly <paramref name="bytes"/>.Length bytes of the given kind and a valid UTC time.</summary>
    public static bool TryRead(string? text, CursorKind kind, Span<byte> bytes, out DateTimeOffset at)
    {
        at = default;
        // The encoded length is fixed, so anything longer is refused before it is decoded.
        if (text is null || text.Length != Base64Url.GetEncodedLength(bytes.Length))
            return false;
        if (Base64Url.DecodeFromChars(text, bytes, out var consumed, out var written) != System.Buffers.OperationStatus.Done
            || consumed != text.Length || written != bytes.Length)
            return false;
        if (bytes[0] != (byte)kind)
            return false;
        var ticks = BinaryPrimitives.ReadInt64BigEndian(bytes[1..]);
        if (ticks < 0 || ticks > DateTimeOffset.MaxValue.UtcTicks)
            return false;
        // Base64url has more than one spelling of the last character's unused bits; accept only ours, so a
        // cursor is one string and can be compared or cached as such.
        if (!string.Equals(Base64Url.EncodeToString(bytes), text, StringComparison.Ordinal))
            return false;
        at = new DateTimeOffset(ticks, TimeSpan.Zero);
        return true;
    }
}
