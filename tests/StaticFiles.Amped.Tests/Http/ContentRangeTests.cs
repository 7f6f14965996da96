using StaticFiles.Amped.Http;

namespace StaticFiles.Amped.Tests.Http;

public sealed class ContentRangeTests
{
    [Theory]
    [InlineData(0L, 1L, 1L, "bytes 0-0/1")]
    [InlineData(5L, 5L, 10L, "bytes 5-9/10")]
    [InlineData(0L, 10L, 10L, "bytes 0-9/10")]
    [InlineData(5_000_000_000L, 1_000_000_000L, 8_000_000_000L, "bytes 5000000000-5999999999/8000000000")]
    public void FormatsASatisfiedRange(long start, long length, long fileLength, string expected)
    {
        Assert.Equal(expected, ContentRange.Format(new ByteRange(start, length), fileLength));
    }

    [Theory]
    [InlineData(0L, "bytes */0")]
    [InlineData(8_000_000_000L, "bytes */8000000000")]
    public void FormatsAnUnsatisfiedRange(long fileLength, string expected)
    {
        Assert.Equal(expected, ContentRange.Unsatisfied(fileLength));
    }
}
