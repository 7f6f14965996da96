using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Headers;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace StaticFiles.Amped.Http;

/// <summary>
/// Decides whether a GET is answered with the whole file, one range, several ranges or 416, from its Range and
/// If-Range headers (RFC 9110 §14, §13.1.5). Run it after <see cref="Preconditions"/> let the request proceed.
/// </summary>
internal static class RangeEvaluator
{
    /// <summary>Plans the response to a request's Range header.</summary>
    /// <param name="headers">The request headers.</param>
    /// <param name="method">The request method.</param>
    /// <param name="v">The validators of the file the request selects.</param>
    /// <param name="now">The current time, which decides whether Last-Modified is a strong validator.</param>
    /// <param name="maxRanges">The most ranges served after coalescing; more are answered with the whole file.</param>
    public static RangePlan Evaluate(RequestHeaders headers, string method, in FileValidators v, DateTimeOffset now, int maxRanges)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(method);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRanges);

        // §14.2: Range is defined for GET only; a server MUST ignore it on other methods. Ignoring a zero-length
        // file's Range is also allowed there, and the whole (empty) file is the most useful answer.
        if (!HttpMethods.IsGet(method) || v.Length == 0)
        {
            return RangePlan.Full;
        }

        // §14.2: a Range the server cannot parse, or in a unit it does not support, MAY be ignored. The framework
        // parses to null on invalid syntax; range units compare case-insensitively (§14.1).
        var range = headers.Range;
        if (range is null || !StringSegment.Equals(range.Unit, "bytes", StringComparison.OrdinalIgnoreCase))
        {
            return RangePlan.Full;
        }

        if (!IfRangeHolds(headers, v, now))
        {
            return RangePlan.Full;
        }

        return Plan(range.Ranges, v.Length, maxRanges);
    }

    // §13.1.5: without If-Range the Range applies; with it, only when the validator still matches. Anything the
    // client sent that we cannot use, including an unparseable field, means the full representation is sent.
    private static bool IfRangeHolds(RequestHeaders headers, in FileValidators v, DateTimeOffset now)
    {
        if (StringValues.IsNullOrEmpty(headers.Headers[HeaderNames.IfRange]))
        {
            return true;
        }

        var condition = headers.IfRange;
        if (condition?.EntityTag is { } tag)
        {
            // An entity tag must match by strong comparison (§8.8.3.2); a weak tag never does.
            return tag.Compare(v.ETag, useStrongComparison: true);
        }

        if (condition?.LastModified is { } date)
        {
            // A date must equal Last-Modified exactly, and Last-Modified must be strong: at least one second older
            // than now, so no second write within the same second can hide behind it (§8.8.2.2).
            return date == v.LastModified && v.LastModified <= now.AddSeconds(-1);
        }

        return false;
    }

    private static RangePlan Plan(ICollection<RangeItemHeaderValue> items, long length, int maxRanges)
    {
        var ranges = new List<ByteRange>(items.Count);
        var unrequested = length;
        foreach (var item in items)
        {
            if (Resolve(item, length) is not { } resolved)
            {
                continue;
            }

            // §14.2 lets a server ignore a Range of overlapping ranges: asking for more bytes than the file holds
            // can only be overlap, a way to make one small request cost many times the file in response.
            if (resolved.Length > unrequested)
            {
                return RangePlan.Full;
            }

            unrequested -= resolved.Length;
            ranges.Add(resolved);
        }

        // §14.1.1: a range set is satisfiable when at least one of its ranges is; the others are dropped.
        if (ranges.Count == 0)
        {
            return RangePlan.Unsatisfiable;
        }

        var coalesced = Coalesce(ranges);

        // §14.2 also lets a server ignore a Range of many small ranges; each part costs a header and a write.
        return coalesced.Count > maxRanges ? RangePlan.Full : RangePlan.Partial(coalesced);
    }

    // §14.1.2: a first-pos at or past the length is unsatisfiable, a last-pos past it is clipped, a suffix covers the
    // last N bytes (all of them when N exceeds the length) and a zero-length suffix is unsatisfiable.
    private static ByteRange? Resolve(RangeItemHeaderValue item, long length)
    {
        if (item.From is not { } from)
        {
            var count = Math.Min(item.To.GetValueOrDefault(), length);
            return count == 0 ? null : new ByteRange(length - count, count);
        }

        if (from >= length)
        {
            return null;
        }

        var last = Math.Min(item.To ?? long.MaxValue, length - 1);
        return new ByteRange(from, last - from + 1);
    }

    // §15.3.7.2: a server MAY coalesce ranges that overlap or are separated by a gap smaller than the overhead of
    // another part, regardless of the order they were requested in. Merging touching ranges is the zero-gap case.
    private static List<ByteRange> Coalesce(List<ByteRange> ranges)
    {
        ranges.Sort(static (a, b) => a.Start.CompareTo(b.Start));

        var merged = new List<ByteRange>(ranges.Count) { ranges[0] };
        for (var i = 1; i < ranges.Count; i++)
        {
            var last = merged[^1];
            var next = ranges[i];
            if (next.Start <= last.End + 1)
            {
                var end = Math.Max(last.End, next.End);
                merged[^1] = last with { Length = end - last.Start + 1 };
            }
            else
            {
                merged.Add(next);
            }
        }

        return merged;
    }
}
