using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using static EpollTransport.Tests.Transport.TransportHarness;

namespace EpollTransport.Tests.Transport;

/// <summary>The connection is its own feature collection, with a short list for the features others set.</summary>
public class ConnectionFeatureTests
{
    private interface IFirstFeature;

    private interface ISecondFeature;

    private interface IThirdFeature;

    private sealed class Feature : IFirstFeature, ISecondFeature, IThirdFeature;

    [Fact]
    public async Task FeaturesSetOnTheConnectionAreFoundReplacedAndEnumerated()
    {
        await using var server = await TransportServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), static _ => Task.CompletedTask);
        using var client = await ConnectAsync(server.EndPoint, CancellationToken.None);
        var connection = (await server.NextConnectionAsync()).Context;
        var features = connection.Features;

        // The transport's own features answer without anything set.
        Assert.Same(connection, features.Get<IConnectionIdFeature>());
        Assert.Same(connection.Transport, features.Get<IConnectionTransportFeature>()!.Transport);
        Assert.Null(features.Get<IFirstFeature>());

        var revision = features.Revision;
        Feature first = new(), second = new(), third = new(), replacement = new();
        features.Set<IFirstFeature>(first);
        features.Set<ISecondFeature>(second);
        features.Set<IThirdFeature>(third); // past the first two slots: the list grows
        features.Set<IFirstFeature>(replacement);
        Assert.Equal(revision + 4, features.Revision);
        Assert.Same(replacement, features.Get<IFirstFeature>());
        Assert.Same(second, features.Get<ISecondFeature>());
        Assert.Same(third, features.Get<IThirdFeature>());

        // A feature set over one of the transport's own wins, and is listed once.
        var ownOverride = new OverridingIdFeature();
        features.Set<IConnectionIdFeature>(ownOverride);
        Assert.Same(ownOverride, features.Get<IConnectionIdFeature>());

        // Setting null removes a feature from the enumeration.
        features.Set<ISecondFeature>(null);
        Assert.Null(features.Get<ISecondFeature>());

        var listed = features.ToList();
        Assert.Equal(listed.Count, listed.Select(p => p.Key).Distinct().Count());
        Assert.Contains(listed, p => p.Key == typeof(IFirstFeature) && ReferenceEquals(p.Value, replacement));
        Assert.Contains(listed, p => p.Key == typeof(IThirdFeature) && ReferenceEquals(p.Value, third));
        Assert.DoesNotContain(listed, p => p.Key == typeof(ISecondFeature));
        Assert.Contains(listed, p => p.Key == typeof(IConnectionIdFeature) && ReferenceEquals(p.Value, ownOverride));
        Assert.Contains(listed, p => p.Key == typeof(IMemoryPoolFeature) && ReferenceEquals(p.Value, connection));
    }

    private sealed class OverridingIdFeature : IConnectionIdFeature
    {
        public string ConnectionId { get; set; } = "override";
    }
}
