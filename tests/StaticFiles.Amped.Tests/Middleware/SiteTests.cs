namespace StaticFiles.Amped.Tests.Middleware;

/// <summary>
/// A test class with a fresh <see cref="StaticSite"/> per test, deleted after it (xunit 2 calls
/// <see cref="IAsyncLifetime.DisposeAsync"/>, not <see cref="IAsyncDisposable"/>, on test classes).
/// </summary>
public abstract class SiteTests : IAsyncLifetime
{
    /// <summary>Every middleware test runs in both modes.</summary>
    public static TheoryData<AmpedMode> Modes => StaticSite.Modes;

    protected StaticSite Site { get; } = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => Site.DisposeAsync().AsTask();
}
