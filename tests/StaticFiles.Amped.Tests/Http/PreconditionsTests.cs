using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Headers;
using Microsoft.Net.Http.Headers;
using StaticFiles.Amped.Http;

namespace StaticFiles.Amped.Tests.Http;

public sealed class PreconditionsTests
{
    private const string Tag = "\"abc\"";
    private const string Before = "Sun, 05 May 2024 07:08:09 GMT";
    private const string Same = "Mon, 06 May 2024 07:08:09 GMT";
    private const string After = "Tue, 07 May 2024 07:08:09 GMT";

    // Last-Modified is the Same date above.
    private static readonly FileValidators s_file = new(
        10,
        new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero),
        new EntityTagHeaderValue(Tag));

    [Fact]
    public void NoConditionsProceeds()
    {
        Assert.Equal("Proceed", Evaluate("GET"));
    }

    [Theory]
    [InlineData(Tag, "Proceed")]
    [InlineData("*", "Proceed")]
    [InlineData("\"x\", \"abc\"", "Proceed")]
    [InlineData("\"x\", garbage, \"abc\"", "Proceed")]
    [InlineData("\"x\", \"y\"", "PreconditionFailed")]
    [InlineData("W/\"abc\"", "PreconditionFailed")]
    [InlineData("garbage", "PreconditionFailed")]
    public void IfMatchUsesStrongComparison(string ifMatch, string expected)
    {
        Assert.Equal(expected, Evaluate("GET", (HeaderNames.IfMatch, ifMatch)));
        Assert.Equal(expected, Evaluate("PUT", (HeaderNames.IfMatch, ifMatch)));
    }

    [Theory]
    [InlineData(Before, "PreconditionFailed")]
    [InlineData(Same, "Proceed")]
    [InlineData(After, "Proceed")]
    [InlineData("not a date", "Proceed")]
    public void IfUnmodifiedSinceFailsWhenTheFileIsNewer(string date, string expected)
    {
        Assert.Equal(expected, Evaluate("GET", (HeaderNames.IfUnmodifiedSince, date)));
    }

    [Fact]
    public void IfUnmodifiedSinceIsIgnoredWhenIfMatchIsPresent()
    {
        Assert.Equal("Proceed", Evaluate("GET", (HeaderNames.IfMatch, Tag), (HeaderNames.IfUnmodifiedSince, Before)));
    }

    [Theory]
    [InlineData(Tag, "GET", "NotModified")]
    [InlineData(Tag, "HEAD", "NotModified")]
    [InlineData("W/\"abc\"", "GET", "NotModified")]
    [InlineData("\"x\", W/\"abc\"", "GET", "NotModified")]
    [InlineData("*", "GET", "NotModified")]
    [InlineData(Tag, "POST", "PreconditionFailed")]
    [InlineData("*", "PUT", "PreconditionFailed")]
    [InlineData("\"x\", \"y\"", "GET", "Proceed")]
    [InlineData("\"x\", \"y\"", "PUT", "Proceed")]
    [InlineData("garbage", "GET", "Proceed")]
    public void IfNoneMatchUsesWeakComparison(string ifNoneMatch, string method, string expected)
    {
        Assert.Equal(expected, Evaluate(method, (HeaderNames.IfNoneMatch, ifNoneMatch)));
    }

    [Theory]
    [InlineData(Before, "GET", "Proceed")]
    [InlineData(Same, "GET", "NotModified")]
    [InlineData(After, "GET", "NotModified")]
    [InlineData(Same, "HEAD", "NotModified")]
    [InlineData(Same, "POST", "Proceed")]
    [InlineData(Same, "PUT", "Proceed")]
    [InlineData("not a date", "GET", "Proceed")]
    public void IfModifiedSinceOnlyAppliesToGetAndHead(string date, string method, string expected)
    {
        Assert.Equal(expected, Evaluate(method, (HeaderNames.IfModifiedSince, date)));
    }

    [Theory]
    [InlineData("\"x\"")]
    [InlineData("garbage")]
    public void IfModifiedSinceIsIgnoredWhenIfNoneMatchIsPresent(string ifNoneMatch)
    {
        Assert.Equal("Proceed", Evaluate("GET", (HeaderNames.IfNoneMatch, ifNoneMatch), (HeaderNames.IfModifiedSince, After)));
    }

    [Fact]
    public void IfMatchIsEvaluatedBeforeIfNoneMatch()
    {
        Assert.Equal("PreconditionFailed", Evaluate("GET", (HeaderNames.IfMatch, "\"x\""), (HeaderNames.IfNoneMatch, Tag)));
    }

    [Fact]
    public void IfUnmodifiedSinceIsEvaluatedBeforeIfNoneMatch()
    {
        Assert.Equal("PreconditionFailed", Evaluate("GET", (HeaderNames.IfUnmodifiedSince, Before), (HeaderNames.IfNoneMatch, Tag)));
    }

    [Fact]
    public void PassingIfMatchStillLetsIfNoneMatchAnswer304()
    {
        Assert.Equal("NotModified", Evaluate("GET", (HeaderNames.IfMatch, Tag), (HeaderNames.IfNoneMatch, Tag)));
    }

    [Fact]
    public void SubSecondMtimeMatchesTheDateItWasSentAs()
    {
        var file = FileValidators.Create(10, new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero).AddMilliseconds(765), 765_000_000, inode: 1);
        var headers = Headers((HeaderNames.IfModifiedSince, HeaderUtilities.FormatDate(file.LastModified)));

        Assert.Equal(PreconditionResult.NotModified, Preconditions.Evaluate(headers, "GET", file));
    }

    private static string Evaluate(string method, params (string Name, string Value)[] headers) =>
        Preconditions.Evaluate(Headers(headers), method, s_file).ToString();

    private static RequestHeaders Headers(params (string Name, string Value)[] headers)
    {
        var context = new DefaultHttpContext();
        foreach (var (name, value) in headers)
        {
            context.Request.Headers[name] = value;
        }

        return context.Request.GetTypedHeaders();
    }
}
