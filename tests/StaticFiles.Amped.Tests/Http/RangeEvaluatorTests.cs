using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using StaticFiles.Amped.Http;

namespace StaticFiles.Amped.Tests.Http;

public sealed class RangeEvaluatorTests
{
    private const int MaxRanges = 16;
    private const string Tag = "\"abc\"";
    private const string LastModified = "Mon, 06 May 2024 07:08:09 GMT";

    private static readonly DateTimeOffset s_lastModified = new(2024, 5, 6, 7, 8, 9, TimeSpan.Zero);
    private static readonly DateTimeOffset s_longAfter = s_lastModified.AddDays(1);

    [Fact]
    public void NoRangeIsFull()
    {
        Assert.Equal("Full", Plan(10));
    }

    [Theory]
    [InlineData("bytes=0-4", "Single 0-4")]
    [InlineData("bytes=5-100", "Single 5-9")]
    [InlineData("bytes=4-", "Single 4-9")]
    [InlineData("bytes=0-", "Single 0-9")]
    [InlineData("bytes=-3", "Single 7-9")]
    [InlineData("bytes=-20", "Single 0-9")]
    [InlineData("bytes=9-9", "Single 9-9")]
    [InlineData("BYTES=1-2", "Single 1-2")]
    [InlineData("bytes=20-, 0-1", "Single 0-1")]
    [InlineData("bytes=1-2,,3-4", "Single 1-4")]
    public void SatisfiableRangeIsSingle(string range, string expected)
    {
        Assert.Equal(expected, Plan(10, (HeaderNames.Range, range)));
    }

    [Theory]
    [InlineData("bytes=-0")]
    [InlineData("bytes=10-")]
    [InlineData("bytes=10-20")]
    [InlineData("bytes=20-, -0")]
    public void NoSatisfiableRangeIsUnsatisfiable(string range)
    {
        Assert.Equal("Unsatisfiable", Plan(10, (HeaderNames.Range, range)));
    }

    [Fact]
    public void OpenRangeAtTheLengthIsUnsatisfiable()
    {
        Assert.Equal("Unsatisfiable", Plan(5, (HeaderNames.Range, "bytes=5-")));
    }

    [Theory]
    [InlineData("items=0-1")]
    [InlineData("bytes=5-2")]
    [InlineData("bytes=abc")]
    [InlineData("bytes=")]
    [InlineData("bytes=0-1, junk")]
    [InlineData("0-1")]
    public void UnsupportedUnitOrInvalidSyntaxIsIgnored(string range)
    {
        Assert.Equal("Full", Plan(10, (HeaderNames.Range, range)));
    }

    [Theory]
    [InlineData("HEAD")]
    [InlineData("POST")]
    [InlineData("PUT")]
    public void OnlyGetHonoursRange(string method)
    {
        Assert.Equal("Full", Plan(10, method, s_longAfter, MaxRanges, (HeaderNames.Range, "bytes=0-1")));
    }

    [Theory]
    [InlineData("bytes=0-")]
    [InlineData("bytes=-5")]
    public void ZeroLengthFileIsFull(string range)
    {
        Assert.Equal("Full", Plan(0, (HeaderNames.Range, range)));
    }

    [Theory]
    [InlineData("bytes=0-0,2-3,1-1", "Single 0-3")]
    [InlineData("bytes=0-3,2-5", "Single 0-5")]
    [InlineData("bytes=0-1,2-3", "Single 0-3")]
    [InlineData("bytes=0-1,4-5", "Multipart 0-1,4-5")]
    [InlineData("bytes=7-8,0-1,4-5", "Multipart 0-1,4-5,7-8")]
    [InlineData("bytes=-2,0-1", "Multipart 0-1,8-9")]
    [InlineData("bytes=0-1,3-3,2-2,6-", "Multipart 0-3,6-9")]
    public void RangesAreSortedAndCoalesced(string range, string expected)
    {
        Assert.Equal(expected, Plan(10, (HeaderNames.Range, range)));
    }

    [Theory]
    [InlineData("bytes=0-,0-")]
    [InlineData("bytes=0-9,0-9")]
    [InlineData("bytes=0-5,3-8")]
    [InlineData("bytes=-10,0-0")]
    public void RangesAskingForMoreThanTheFileAreIgnored(string range)
    {
        Assert.Equal("Full", Plan(10, (HeaderNames.Range, range)));
    }

    [Fact]
    public void MoreThanMaxRangesIsFull()
    {
        Assert.Equal("Full", Plan(100, "GET", s_longAfter, MaxRanges, (HeaderNames.Range, SeparateRanges(17))));
    }

    [Fact]
    public void ExactlyMaxRangesIsMultipart()
    {
        var plan = Evaluate(100, "GET", s_longAfter, MaxRanges, (HeaderNames.Range, SeparateRanges(16)));

        Assert.Equal(RangePlanKind.Multipart, plan.Kind);
        Assert.Equal(16, plan.Ranges.Count);
    }

    [Fact]
    public void MaxRangesCountsRangesAfterCoalescing()
    {
        // 17 requested ranges, but the last two touch.
        var range = SeparateRanges(16) + ",31-31";

        var plan = Evaluate(100, "GET", s_longAfter, MaxRanges, (HeaderNames.Range, range));

        Assert.Equal(RangePlanKind.Multipart, plan.Kind);
        Assert.Equal(16, plan.Ranges.Count);
        Assert.Equal(new ByteRange(30, 2), plan.Ranges[^1]);
    }

    [Fact]
    public void MaxRangesMustBePositive()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Evaluate(10, "GET", s_longAfter, 0));
    }

    [Theory]
    [InlineData(Tag, "Single 0-1")]
    [InlineData("\"stale\"", "Full")]
    [InlineData("W/\"abc\"", "Full")]
    [InlineData(LastModified, "Single 0-1")]
    [InlineData("Mon, 06 May 2024 07:08:08 GMT", "Full")]
    [InlineData("Mon, 06 May 2024 07:08:10 GMT", "Full")]
    [InlineData("garbage", "Full")]
    public void IfRangeMustMatchTheCurrentValidator(string ifRange, string expected)
    {
        Assert.Equal(expected, Plan(10, (HeaderNames.Range, "bytes=0-1"), (HeaderNames.IfRange, ifRange)));
    }

    [Fact]
    public void MatchingIfRangeStillAnswersUnsatisfiable()
    {
        Assert.Equal("Unsatisfiable", Plan(10, (HeaderNames.Range, "bytes=10-"), (HeaderNames.IfRange, Tag)));
    }

    [Theory]
    [InlineData(0, "Full")]
    [InlineData(999, "Full")]
    [InlineData(1000, "Single 0-1")]
    public void IfRangeDateNeedsAStrongLastModified(int millisecondsAfter, string expected)
    {
        var now = s_lastModified.AddMilliseconds(millisecondsAfter);

        Assert.Equal(expected, Plan(10, "GET", now, MaxRanges, (HeaderNames.Range, "bytes=0-1"), (HeaderNames.IfRange, LastModified)));
    }

    [Fact]
    public void IfRangeWithoutRangeIsFull()
    {
        Assert.Equal("Full", Plan(10, (HeaderNames.IfRange, Tag)));
    }

    private static string SeparateRanges(int count) =>
        "bytes=" + string.Join(",", Enumerable.Range(0, count).Select(i => $"{i * 2}-{i * 2}"));

    private static string Plan(long length, params (string Name, string Value)[] headers) =>
        Plan(length, "GET", s_longAfter, MaxRanges, headers);

    private static string Plan(long length, string method, DateTimeOffset now, int maxRanges, params (string Name, string Value)[] headers)
    {
        var plan = Evaluate(length, method, now, maxRanges, headers);
        return plan.Ranges.Count == 0
            ? plan.Kind.ToString()
            : plan.Kind + " " + string.Join(",", plan.Ranges.Select(r => $"{r.Start}-{r.End}"));
    }

    private static RangePlan Evaluate(long length, string method, DateTimeOffset now, int maxRanges, params (string Name, string Value)[] headers)
    {
        var context = new DefaultHttpContext();
        foreach (var (name, value) in headers)
        {
            context.Request.Headers[name] = value;
        }

        var file = new FileValidators(length, s_lastModified, new EntityTagHeaderValue(Tag));
        return RangeEvaluator.Evaluate(context.Request.GetTypedHeaders(), method, file, now, maxRanges);
    }
}
