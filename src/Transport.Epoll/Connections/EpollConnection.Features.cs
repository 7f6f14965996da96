using System.Buffers;
using System.Collections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace EpollTransport.Connections;

/// <summary>
/// The connection is its own feature collection for the features every transport provides, so a connection
/// costs no dictionary until something (TLS, Kestrel's metrics) sets a feature of its own.
/// </summary>
internal sealed partial class EpollConnection : IFeatureCollection,
    IConnectionIdFeature,
    IConnectionTransportFeature,
    IConnectionItemsFeature,
    IMemoryPoolFeature,
    IConnectionLifetimeFeature,
    IConnectionEndPointFeature
{
    private Dictionary<Type, object?>? _extraFeatures;
    private int _featureRevision;

    public override IFeatureCollection Features => this;

    bool IFeatureCollection.IsReadOnly => false;

    int IFeatureCollection.Revision => _featureRevision;

    object? IFeatureCollection.this[Type key]
    {
        get
        {
            if (_extraFeatures is not null && _extraFeatures.TryGetValue(key, out var feature))
            {
                return feature;
            }
            return IsOwnFeature(key) ? this : null;
        }
        set
        {
            _extraFeatures ??= new Dictionary<Type, object?>();
            _extraFeatures[key] = value;
            _featureRevision++;
        }
    }

    TFeature? IFeatureCollection.Get<TFeature>() where TFeature : default
        => (TFeature?)((IFeatureCollection)this)[typeof(TFeature)];

    void IFeatureCollection.Set<TFeature>(TFeature? instance) where TFeature : default
        => ((IFeatureCollection)this)[typeof(TFeature)] = instance;

    IEnumerator<KeyValuePair<Type, object>> IEnumerable<KeyValuePair<Type, object>>.GetEnumerator()
    {
        foreach (var type in s_ownFeatures)
        {
            if (_extraFeatures is null || !_extraFeatures.ContainsKey(type))
            {
                yield return new KeyValuePair<Type, object>(type, this);
            }
        }
        if (_extraFeatures is not null)
        {
            foreach (var pair in _extraFeatures)
            {
                if (pair.Value is not null)
                {
                    yield return new KeyValuePair<Type, object>(pair.Key, pair.Value);
                }
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable<KeyValuePair<Type, object>>)this).GetEnumerator();

    private static readonly Type[] s_ownFeatures =
    [
        typeof(IConnectionIdFeature),
        typeof(IConnectionTransportFeature),
        typeof(IConnectionItemsFeature),
        typeof(IMemoryPoolFeature),
        typeof(IConnectionLifetimeFeature),
        typeof(IConnectionEndPointFeature),
    ];

    private static bool IsOwnFeature(Type key)
        => key == typeof(IConnectionIdFeature)
        || key == typeof(IConnectionTransportFeature)
        || key == typeof(IConnectionItemsFeature)
        || key == typeof(IMemoryPoolFeature)
        || key == typeof(IConnectionLifetimeFeature)
        || key == typeof(IConnectionEndPointFeature);

    MemoryPool<byte> IMemoryPoolFeature.MemoryPool => MemoryPool;
}
