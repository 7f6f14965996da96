namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>
/// A bad option value is refused where it is set, with the option's name, as <c>EpollTransportOptions</c> does: not
/// a 500, a helper pool that never starts, or an overflow at the first large file.
/// </summary>
public sealed class OptionsValidationTests
{
    public static TheoryData<string, Action<AmpedStaticFileOptions>> Invalid => new()
    {
        { nameof(AmpedStaticFileOptions.MetadataHelperThreads), o => o.MetadataHelperThreads = 0 },
        { nameof(AmpedStaticFileOptions.DataHelperThreads), o => o.DataHelperThreads = 0 },
        { nameof(AmpedStaticFileOptions.HelperQueueCapacity), o => o.HelperQueueCapacity = 0 },
        { nameof(AmpedStaticFileOptions.MaxRanges), o => o.MaxRanges = 0 },
        { nameof(AmpedStaticFileOptions.MissCacheEntries), o => o.MissCacheEntries = -1 },
        { nameof(AmpedStaticFileOptions.FileCacheEntries), o => o.FileCacheEntries = -1 },
        { nameof(AmpedStaticFileOptions.ContentCacheBytes), o => o.ContentCacheBytes = -1 },
        { nameof(AmpedStaticFileOptions.MaxCachedFileSize), o => o.MaxCachedFileSize = -1 },
        { nameof(AmpedStaticFileOptions.MaxCachedFileSize), o => o.MaxCachedFileSize = 2L * 1024 * 1024 * 1024 },
    };

    public static TheoryData<Action<AmpedStaticFileOptions>> Valid => new()
    {
        o => o.MetadataHelperThreads = 1,
        o => o.DataHelperThreads = 1,
        o => o.HelperQueueCapacity = 1,
        o => o.MaxRanges = 1,
        o => o.MissCacheEntries = 0,
        o => o.FileCacheEntries = 0,
        o => o.ContentCacheBytes = 0,
        o => o.MaxCachedFileSize = 0,
        o => o.MaxCachedFileSize = Array.MaxLength,
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void AnOutOfRangeValueIsRefusedAtTheSetter(string option, Action<AmpedStaticFileOptions> set)
    {
        var options = new AmpedStaticFileOptions();

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => set(options));

        // As for every property setter: the parameter is "value"; the row names the option.
        Assert.True(error.ParamName == "value", $"{option}: {error.ParamName}");
    }

    [Theory]
    [MemberData(nameof(Valid))]
    public void TheEdgesOfEachRangeAreAccepted(Action<AmpedStaticFileOptions> set) => set(new AmpedStaticFileOptions());

    [Fact]
    public void TheDefaultsAreValid()
    {
        var options = new AmpedStaticFileOptions();

        Assert.Equal((1, 4, 1024, 16), (options.MetadataHelperThreads, options.DataHelperThreads, options.HelperQueueCapacity, options.MaxRanges));
        Assert.Equal((4096, 1024, 64L * 1024 * 1024, 128L * 1024),
            (options.MissCacheEntries, options.FileCacheEntries, options.ContentCacheBytes, options.MaxCachedFileSize));
    }
}
