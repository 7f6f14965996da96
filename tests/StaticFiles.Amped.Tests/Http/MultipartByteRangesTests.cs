using System.Text;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using StaticFiles.Amped.Http;

namespace StaticFiles.Amped.Tests.Http;

public sealed class MultipartByteRangesTests
{
    private const string Boundary = "B0undary";
    private const string PartType = "text/plain; charset=utf-8";

    private static readonly byte[] s_file = Encoding.ASCII.GetBytes("0123456789abcdefghij");
    private static readonly ByteRange[] s_ranges = [new(0, 2), new(5, 3), new(19, 1)];

    [Fact]
    public void LaysOutEachPartHeaderAndTheClosingDelimiter()
    {
        var layout = new MultipartByteRanges(s_ranges, PartType, s_file.Length, Boundary);

        Assert.Equal(
            "--B0undary\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/20\r\n\r\n",
            Ascii(layout.Parts[0].Header));
        Assert.Equal(
            "\r\n--B0undary\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 5-7/20\r\n\r\n",
            Ascii(layout.Parts[1].Header));
        Assert.Equal(
            "\r\n--B0undary\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 19-19/20\r\n\r\n",
            Ascii(layout.Parts[2].Header));
        Assert.Equal("\r\n--B0undary--\r\n", Ascii(layout.Closing));
        Assert.Equal(s_ranges, layout.Parts.Select(p => p.Range));
    }

    [Fact]
    public void ContentLengthIsTheLengthOfTheBodyLaidOut()
    {
        var layout = new MultipartByteRanges(s_ranges, PartType, s_file.Length, Boundary);

        Assert.Equal(Body(layout).Length, layout.ContentLength);
        Assert.Equal(
            layout.Parts.Sum(p => p.Header.Length + p.Range.Length) + layout.Closing.Length,
            layout.ContentLength);
    }

    [Fact]
    public async Task BodyParsesAsMultipartWithEachRange()
    {
        var layout = new MultipartByteRanges(s_ranges, PartType, s_file.Length, MultipartByteRanges.NewBoundary());
        var boundary = HeaderUtilities.RemoveQuotes(MediaTypeHeaderValue.Parse(layout.ContentType).Boundary).ToString();
        var reader = new MultipartReader(boundary, new MemoryStream(Body(layout)));

        foreach (var range in s_ranges)
        {
            var section = await reader.ReadNextSectionAsync();
            Assert.NotNull(section);
            Assert.Equal(PartType, section.ContentType);
            Assert.Equal(ContentRange.Format(range, s_file.Length), section.Headers![HeaderNames.ContentRange].ToString());

            using var content = new MemoryStream();
            await section.Body.CopyToAsync(content);
            Assert.Equal(s_file.AsSpan((int)range.Start, (int)range.Length).ToArray(), content.ToArray());
        }

        Assert.Null(await reader.ReadNextSectionAsync());
    }

    [Fact]
    public void ContentTypeNamesTheBoundary()
    {
        var layout = new MultipartByteRanges(s_ranges, PartType, s_file.Length, Boundary);

        Assert.Equal("multipart/byteranges; boundary=B0undary", layout.ContentType);
        Assert.Equal(Boundary, layout.Boundary);
    }

    [Fact]
    public void NewBoundaryIsLongRandomAndSafe()
    {
        var a = MultipartByteRanges.NewBoundary();
        var b = MultipartByteRanges.NewBoundary();

        Assert.InRange(a.Length, 16, 70);
        Assert.All(a, c => Assert.True(char.IsAsciiLetterOrDigit(c), $"'{c}' is not a letter or digit"));
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void RejectsAnEmptyRangeList()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new MultipartByteRanges([], PartType, s_file.Length, Boundary));
    }

    private static string Ascii(ReadOnlyMemory<byte> bytes) => Encoding.ASCII.GetString(bytes.Span);

    private static byte[] Body(MultipartByteRanges layout)
    {
        var body = new List<byte>();
        foreach (var part in layout.Parts)
        {
            body.AddRange(part.Header.ToArray());
            body.AddRange(s_file.AsSpan((int)part.Range.Start, (int)part.Range.Length).ToArray());
        }

        body.AddRange(layout.Closing.ToArray());
        return body.ToArray();
    }
}
