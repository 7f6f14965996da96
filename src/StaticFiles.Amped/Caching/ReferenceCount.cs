namespace StaticFiles.Amped.Caching;

/// <summary>
/// The reference count of something whose last holder closes it (a cached entry's fds, the served root's fd): once
/// it reaches 0 it never comes back, so a holder that looks it up late cannot revive a closed fd whose number may
/// already name another file.
/// </summary>
internal static class ReferenceCount
{
    /// <summary>Adds one reference to <paramref name="references"/>, unless the last one is gone already.</summary>
    public static bool TryAcquire(ref int references)
    {
        var seen = Volatile.Read(ref references);
        while (seen > 0)
        {
            var before = Interlocked.CompareExchange(ref references, seen + 1, seen);
            if (before == seen)
            {
                return true;
            }
            seen = before;
        }
        return false;
    }
}
