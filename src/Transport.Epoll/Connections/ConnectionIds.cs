namespace EpollTransport.Connections;

/// <summary>
/// Connection ids in Kestrel's shape: 13 base-32 characters of a counter seeded from the clock, so ids from
/// different runs rarely collide in logs.
/// </summary>
internal static class ConnectionIds
{
    private const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
    private static long s_last = DateTime.UtcNow.Ticks;

    public static string Next() => string.Create(13, Interlocked.Increment(ref s_last), static (span, id) =>
    {
        for (int i = 12; i >= 0; i--)
        {
            span[i] = Alphabet[(int)(id & 31)];
            id >>= 5;
        }
    });
}
