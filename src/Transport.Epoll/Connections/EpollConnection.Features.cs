using System.Buffers;
using System.Collections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace EpollTransport.Connections;

/// <summary>
/// The connection is its own feature collection for the features every transport provides, so a connection
/// costs no storage for features until something (TLS, Kestrel's metrics) sets a feature of its own.
/// </summary>
internal sealed partial class EpollConnection : IFeatureCollection,
    IConnectionIdFeature,
    IConnectionTransportFeature,
    IConnectionItemsFeature,
    IMemoryPoolFeature,
    IConnectionLifetimeFeature,
    IConnectionEndPointFeature,
    IEpollFileRegionFeature
{
    /// <summary>Features set on the connection (Kestrel sets one or two): a short array searched linearly.</summary>
    private KeyValuePair<Type, object?>[]? _extraFeatures;
    private int _extraFeatureCount;
    private int _featureRevision;

    public override IFeatureCollection Features => this;

    bool IFeatureCollection.IsReadOnly => false;

    int IFeatureCollection.Revision => _featureRevision;

    object? IFeatureCollection.this[Type key]
    {
        get
        {
            var index = IndexOfExtra(key);
            if (index >= 0)
            {
                return _extraFeatures![index].Value;
            }
            return IsOwnFeature(key) ? this : null;
        }
        set
        {
            var index = IndexOfExtra(key);
            if (index < 0)
            {
                _extraFeatures ??= new KeyValuePair<Type, object?>[2];
                if (_extraFeatureCount == _extraFeatures.Length)
                {
                    Array.Resize(ref _extraFeatures, _extraFeatures.Length * 2);
                }
                index = _extraFeatureCount++;
            }
            _extraFeatures![index] = new KeyValuePair<Type, object?>(key, value);
            _featureRevision++;
        }
    }

    private int IndexOfExtra(Type key)
    {
        for (int i = 0; i < _extraFeatureCount; i++)
        {
            if (_extraFeatures![i].Key == key)
            {
                return i;
            }
        }
        return -1;
    }

    TFeature? IFeatureCollection.Get<TFeature>() where TFeature : default
        => (TFeature?)((IFeatureCollection)this)[typeof(TFeature)];

    void IFeatureCollection.Set<TFeature>(TFeature? instance) where TFeature : default
        => ((IFeatureCollection)this)[typeof(TFeature)] = instance;

    IEnumerator<KeyValuePair<Type, object>> IEnumerable<KeyValuePair<Type, object>>.GetEnumerator()
    {
        foreach (var type in s_ownFeatures)
        {
            if (IndexOfExtra(type) < 0)
            {
                yield return new KeyValuePair<Type, object>(type, this);
            }
        }
        for (int i = 0; i < _extraFeatureCount; i++)
        {
            var pair = _extraFeatures![i];
            if (pair.Value is not null)
            {
                yield return new KeyValuePair<Type, object>(pair.Key, pair.Value);
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
        typeof(IEpollFileRegionFeature),
    ];

    private static bool IsOwnFeature(Type key)
        => key == typeof(IConnectionIdFeature)
        || key == typeof(IConnectionTransportFeature)
        || key == typeof(IConnectionItemsFeature)
        || key == typeof(IMemoryPoolFeature)
        || key == typeof(IConnectionLifetimeFeature)
        || key == typeof(IConnectionEndPointFeature)
        || key == typeof(IEpollFileRegionFeature);

    MemoryPool<byte> IMemoryPoolFeature.MemoryPool => MemoryPool;
}
