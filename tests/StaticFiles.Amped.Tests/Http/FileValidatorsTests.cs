using StaticFiles.Amped.Http;

namespace StaticFiles.Amped.Tests.Http;

public sealed class FileValidatorsTests
{
    private static readonly DateTimeOffset s_mtime = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero).AddTicks(7_654_321);

    [Fact]
    public void LastModifiedIsTruncatedToWholeSecondsInUtc()
    {
        var v = FileValidators.Create(10, s_mtime.ToOffset(TimeSpan.FromHours(2)), 765_432_100, inode: 42);

        Assert.Equal(new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero), v.LastModified);
        Assert.Equal(TimeSpan.Zero, v.LastModified.Offset);
        Assert.Equal(10, v.Length);
    }

    [Fact]
    public void ETagIsStrongQuotedHexOfInodeLengthAndNanosecondMtime()
    {
        var v = FileValidators.Create(0x2a, DateTimeOffset.FromUnixTimeSeconds(0x5f5e100), 999_999_999, inode: 0x1f);

        Assert.False(v.ETag.IsWeak);
        Assert.Equal("\"1f-2a-5f5e100.3b9ac9ff\"", v.ETag.Tag.ToString());
    }

    [Fact]
    public void SameInputsGiveTheSameETag()
    {
        var a = FileValidators.Create(10, s_mtime, 1, inode: 42);
        var b = FileValidators.Create(10, s_mtime, 1, inode: 42);

        Assert.True(a.ETag.Compare(b.ETag, useStrongComparison: true));
    }

    [Fact]
    public void RewriteWithinTheSameSecondAndLengthGetsANewETag()
    {
        var first = FileValidators.Create(10, s_mtime, 100, inode: 42);
        var second = FileValidators.Create(10, s_mtime, 200, inode: 42);

        Assert.Equal(first.LastModified, second.LastModified);
        Assert.False(first.ETag.Compare(second.ETag, useStrongComparison: false));
    }

    [Fact]
    public void ReplacedFileWithSameSizeAndMtimeGetsANewETag()
    {
        var first = FileValidators.Create(10, s_mtime, 100, inode: 42);
        var second = FileValidators.Create(10, s_mtime, 100, inode: 43);

        Assert.False(first.ETag.Compare(second.ETag, useStrongComparison: false));
    }

    [Fact]
    public void DifferentLengthGetsANewETag()
    {
        var first = FileValidators.Create(10, s_mtime, 100, inode: 42);
        var second = FileValidators.Create(11, s_mtime, 100, inode: 42);

        Assert.False(first.ETag.Compare(second.ETag, useStrongComparison: false));
    }

    [Theory]
    [InlineData(-1L, 0L)]
    [InlineData(0L, -1L)]
    [InlineData(0L, 1_000_000_000L)]
    public void RejectsOutOfRangeInputs(long length, long nanoseconds)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => FileValidators.Create(length, s_mtime, nanoseconds, inode: 1));
    }
}
