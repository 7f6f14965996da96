namespace StaticFiles.Amped.Http;

/// <summary>How a GET is answered with respect to its Range header (RFC 9110 §14).</summary>
internal enum RangePlanKind
{
    /// <summary>200 with the whole file: no Range, or one that is ignored.</summary>
    Full,

    /// <summary>206 with one range in the body and a Content-Range header (§15.3.7.1).</summary>
    Single,

    /// <summary>206 with a <c>multipart/byteranges</c> body (§15.3.7.2, §14.6).</summary>
    Multipart,

    /// <summary>416 with <c>Content-Range: bytes */length</c> (§15.5.17).</summary>
    Unsatisfiable,
}

/// <summary>A run of bytes within a file.</summary>
/// <param name="Start">Offset of the first byte.</param>
/// <param name="Length">Number of bytes, at least one.</param>
internal readonly record struct ByteRange(long Start, long Length)
{
    /// <summary>Offset of the last byte, as a Content-Range last-pos writes it (§14.4).</summary>
    public long End => Start + Length - 1;
}

/// <summary>
/// The outcome of <see cref="RangeEvaluator"/>: the kind of response and, for 206, the ranges to send in ascending
/// order, neither overlapping nor touching.
/// </summary>
internal sealed class RangePlan
{
    /// <summary>Send the whole file.</summary>
    public static readonly RangePlan Full = new(RangePlanKind.Full, []);

    /// <summary>Answer 416.</summary>
    public static readonly RangePlan Unsatisfiable = new(RangePlanKind.Unsatisfiable, []);

    private RangePlan(RangePlanKind kind, IReadOnlyList<ByteRange> ranges)
    {
        Kind = kind;
        Ranges = ranges;
    }

    /// <summary>The kind of response.</summary>
    public RangePlanKind Kind { get; }

    /// <summary>The ranges to send: one for <see cref="RangePlanKind.Single"/>, several for
    /// <see cref="RangePlanKind.Multipart"/>, none otherwise.</summary>
    public IReadOnlyList<ByteRange> Ranges { get; }

    /// <summary>A 206 plan: single for one range, multipart for more.</summary>
    /// <param name="ranges">Sorted, disjoint, non-adjacent ranges; at least one.</param>
    public static RangePlan Partial(IReadOnlyList<ByteRange> ranges)
    {
        ArgumentOutOfRangeException.ThrowIfZero(ranges.Count);
        return new RangePlan(ranges.Count == 1 ? RangePlanKind.Single : RangePlanKind.Multipart, ranges);
    }
}
