namespace AbBench;

/// <summary>Bad runs: at once a <see cref="RefusedException"/>, or with --keep-going collected to the end.</summary>
internal sealed class Refusals(bool keepGoing)
{
    private readonly List<string> _bad = [];

    public void Check(string label, string? problem)
    {
        if (problem is null)
        {
            return;
        }
        var message = $"{label}: {problem}";
        if (!keepGoing)
        {
            throw new RefusedException(message);
        }
        _bad.Add(message);
    }

    public void ThrowIfAny()
    {
        if (_bad.Count > 0)
        {
            throw new RefusedException($"{_bad.Count} run(s) had errors:\n  " + string.Join("\n  ", _bad));
        }
    }
}
