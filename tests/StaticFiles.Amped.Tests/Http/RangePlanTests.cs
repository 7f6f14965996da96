using StaticFiles.Amped.Http;

namespace StaticFiles.Amped.Tests.Http;

public class RangePlanTests
{
    [Fact]
    public void EndIsTheInclusiveLastByte()
    {
        Assert.Equal(0, new ByteRange(0, 1).End);
        Assert.Equal(9, new ByteRange(5, 5).End);
    }

    [Fact]
    public void FullAndUnsatisfiableCarryNoRanges()
    {
        Assert.Equal(RangePlanKind.Full, RangePlan.Full.Kind);
        Assert.Empty(RangePlan.Full.Ranges);
        Assert.Equal(RangePlanKind.Unsatisfiable, RangePlan.Unsatisfiable.Kind);
        Assert.Empty(RangePlan.Unsatisfiable.Ranges);
    }

    [Fact]
    public void PartialIsSingleForOneRangeAndMultipartForMore()
    {
        Assert.Equal(RangePlanKind.Single, RangePlan.Partial([new ByteRange(0, 1)]).Kind);
        Assert.Equal(RangePlanKind.Multipart, RangePlan.Partial([new ByteRange(0, 1), new ByteRange(2, 1)]).Kind);
        Assert.Throws<ArgumentOutOfRangeException>(() => RangePlan.Partial([]));
    }
}
