namespace AbBench;

/// <summary>A server variant: a name and the arguments it passes to samples/WebApp.</summary>
internal sealed record Variant(string Name, string Args)
{
    /// <summary>The variants of the scenarios that name none of their own: Sockets (the baseline), epoll, epoll inline.</summary>
    public static readonly IReadOnlyList<Variant> Defaults =
    [
        new("sockets", "--transport sockets"),
        new("epoll", "--transport epoll"),
        new("epoll-inline", "--transport epoll --inline"),
    ];

    public IReadOnlyList<string> ArgList { get; } = CommandLine.Split(Args);
}
