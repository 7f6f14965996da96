using System.Diagnostics;

namespace AbBench;

/// <summary>
/// Where a scenario is: its step (start, warm-up, case, round, variant), the runs done, the time since it started and
/// an estimate of the time left. On a terminal it is one line that updates in place every second; when stdout is
/// redirected (a log, a pipe) each step is one plain line. Everything the runner prints while a scenario runs goes
/// through <see cref="WriteLine"/>, so that it never lands in the middle of that line.
/// </summary>
internal sealed class Progress : IDisposable
{
    private readonly bool _live = !Console.IsOutputRedirected;
    private readonly Lock _lock = new();
    private readonly Timer? _timer;
    private readonly Stopwatch _scenarioClock = new();
    private readonly Stopwatch _runsClock = new();
    private string _step = "";
    private int _runs;
    private int _done;
    private int _secondsPerRun;
    private int _shown;

    public Progress()
    {
        if (_live)
        {
            _timer = new Timer(_ => Redraw(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>A scenario starts: <paramref name="runs"/> measured runs of about <paramref name="secondsPerRun"/> each.</summary>
    public void Begin(int runs, int secondsPerRun)
    {
        lock (_lock)
        {
            (_runs, _done, _secondsPerRun, _step) = (runs, 0, secondsPerRun, "");
            _scenarioClock.Restart();
            _runsClock.Reset();
        }
    }

    /// <summary>
    /// The next step: a server start, a warm-up, or (<paramref name="run"/>) a measured run. The first measured run
    /// starts the clock that the estimate of the time left follows once a run has ended.
    /// </summary>
    public void Step(string step, bool run = false)
    {
        lock (_lock)
        {
            _step = step;
            if (run)
            {
                _runsClock.Start();
            }
            if (_live)
            {
                Draw();
            }
            else
            {
                Console.WriteLine($"[{Status()}]");
            }
        }
    }

    /// <summary>A measured run has ended: the estimate now follows the runs' own pace.</summary>
    public void RunDone()
    {
        lock (_lock)
        {
            _done++;
        }
    }

    public void WriteLine(string text)
    {
        lock (_lock)
        {
            Clear();
            Console.WriteLine(text);
            if (_live && _step.Length > 0)
            {
                Draw();
            }
        }
    }

    /// <summary>The scenario is over: the live line goes, so that the report starts on a clean line.</summary>
    public void End()
    {
        lock (_lock)
        {
            Clear();
            _step = "";
            _scenarioClock.Stop();
        }
    }

    public void Dispose()
    {
        _timer?.Dispose();
        End();
    }

    private void Redraw()
    {
        lock (_lock)
        {
            if (_step.Length > 0)
            {
                Draw();
            }
        }
    }

    private string Status()
    {
        // Before the first run ends the plan's estimate; after it, the pace of the runs so far.
        var perRun = _done > 0 ? _runsClock.Elapsed.TotalSeconds / _done : _secondsPerRun;
        var left = TimeSpan.FromSeconds(Math.Max(0, _runs - _done) * perRun);
        return $"{_step}: {_done}/{_runs} runs done, {Clock(_scenarioClock.Elapsed)} elapsed, about {Clock(left)} left";
    }

    private void Draw()
    {
        var text = Status();
        var width = Console.WindowWidth > 1 ? Console.WindowWidth - 1 : 120;
        if (text.Length > width)
        {
            text = text[..width];
        }
        Console.Write("\r" + text.PadRight(_shown));
        _shown = text.Length;
    }

    private void Clear()
    {
        if (_live && _shown > 0)
        {
            Console.Write("\r" + new string(' ', _shown) + "\r");
            _shown = 0;
        }
    }

    private static string Clock(TimeSpan t) => $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}";
}
