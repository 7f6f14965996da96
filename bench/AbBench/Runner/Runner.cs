namespace AbBench;

/// <summary>A run had errors: the scenario's figures are not reported.</summary>
internal sealed class RefusedException(string message) : BenchException(message);

/// <summary>
/// Runs a scenario's plan: start the servers, warm them up, run every case's rounds with the variants in turn,
/// refuse on errors, stop the servers, finish. Every scenario goes through here; only what it declares differs.
/// </summary>
internal static class Runner
{
    public static async Task<ScenarioResult> RunAsync(BenchContext context, Scenario scenario)
    {
        var plan = await scenario.PlanAsync(context);
        var servers = new List<IServer>();
        try
        {
            var rounds = plan.Rounds ?? context.Options.Rounds;
            var runs = plan.Cases.Count * rounds * plan.Servers.Count;
            var warmUpShare = plan.WarmUp is { } w ? plan.Servers.Count(s => s.WarmsUp) * Math.Min(w.MostSeconds, 30) / Math.Max(1, runs) : 0;
            PrintPlan(context, plan.Result, runs, plan.SecondsPerRun + warmUpShare);
            context.Progress.Begin(runs, plan.SecondsPerRun + warmUpShare);

            var refusals = new Refusals(context.Options.KeepGoing);
            switch (plan.Lifetime)
            {
                case ServerLifetime.Shared:
                    foreach (var spec in plan.Servers)
                    {
                        servers.Add(await StartAsync(context, plan, spec));
                    }
                    if (plan.AfterAllStart is { } afterAllStart)
                    {
                        var label = $"{plan.Result.Name} after start";
                        context.Progress.Step(label);
                        await Labelled(label, async () =>
                        {
                            await afterAllStart(servers);
                            return true;
                        });
                    }
                    await WarmUpAsync(context, plan, servers);
                    foreach (var c in plan.Cases)
                    {
                        await RunCaseAsync(context, plan, c, rounds, refusals, (i, _) => Task.FromResult(servers[i]), _ => Task.CompletedTask);
                    }
                    break;
                case ServerLifetime.PerRun:
                    foreach (var c in plan.Cases)
                    {
                        await RunCaseAsync(context, plan, c, rounds, refusals, (i, _) => StartAsync(context, plan, plan.Servers[i]),
                            async server => await server.DisposeAsync());
                    }
                    break;
                case ServerLifetime.OneAtATime:
                    for (var i = 0; i < plan.Servers.Count; i++)
                    {
                        await using var server = await StartAsync(context, plan, plan.Servers[i]);
                        foreach (var c in plan.Cases)
                        {
                            await RunVariantRoundsAsync(context, plan, c, rounds, refusals, i, server);
                        }
                    }
                    break;
            }
            await StopAllAsync(servers);
            refusals.ThrowIfAny();
            plan.Finish?.Invoke();
            return plan.Result;
        }
        finally
        {
            context.Progress.End();
            await StopAllAsync(servers);
            foreach (var resource in plan.Resources)
            {
                resource.Dispose();
            }
        }
    }

    private static async Task<IServer> StartAsync(BenchContext context, ScenarioPlan plan, ServerSpec spec)
    {
        var label = $"{plan.Result.Name} {spec.Variant.Name}";
        context.Progress.Step($"{label} start");
        var server = await Labelled($"{label} start", () => spec.StartAsync(context.Cancellation));
        try
        {
            plan.Result.StartupLines.TryAdd(spec.Variant.Name, server.StartupLine ?? "n/a");
            if (plan.AfterStart is { } afterStart)
            {
                await Labelled(label, async () =>
                {
                    await afterStart(server, spec.Variant);
                    return true;
                });
            }
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private static async Task WarmUpAsync(BenchContext context, ScenarioPlan plan, List<IServer> servers)
    {
        if (plan.WarmUp is not { } warmUp)
        {
            return;
        }
        var warmups = new List<string>();
        for (var i = 0; i < servers.Count; i++)
        {
            if (!plan.Servers[i].WarmsUp)
            {
                continue;
            }
            var label = $"{plan.Result.Name} {plan.Servers[i].Variant.Name} warm-up";
            context.Progress.Step(label);
            var seconds = await Labelled(label, () => WarmUp.UntilSteadyAsync(servers[i], warmUp.MostSeconds, warmUp.Window));
            context.Progress.WriteLine($"  {label}: {seconds} s");
            warmups.Add($"{plan.Servers[i].Variant.Name} {seconds} s");
            plan.AfterWarmUp?.Invoke(servers[i]);
        }
        plan.Result.Notes.Add($"Warm-up until steady, {warmUp.Load}: {string.Join(", ", warmups)}");
    }

    /// <summary>
    /// A case's rounds, the variants in turn within each round, on the servers <paramref name="serverOf"/> gives. Odd
    /// rounds take the variants in order and even rounds in reverse (A B C, C B A, ...): the machine's speed drifts
    /// over seconds here, and a fixed order would give the same variant the same side of every drift.
    /// </summary>
    private static async Task RunCaseAsync(BenchContext context, ScenarioPlan plan, CasePlan c, int rounds, Refusals refusals,
        Func<int, int, Task<IServer>> serverOf, Func<IServer, Task> afterRun)
    {
        plan.Result.Cases.Add(c.Result);
        if (c.BeforeAsync is { } before)
        {
            await before();
        }
        for (var round = 1; round <= rounds; round++)
        {
            for (var k = 0; k < plan.Servers.Count; k++)
            {
                var i = round % 2 == 1 ? k : plan.Servers.Count - 1 - k;
                var server = await serverOf(i, round);
                try
                {
                    await RunOnceAsync(context, plan, c, rounds, refusals, round, i, server);
                }
                finally
                {
                    await afterRun(server);
                }
            }
        }
    }

    /// <summary>A case's rounds for one variant alone, on its own server.</summary>
    private static async Task RunVariantRoundsAsync(BenchContext context, ScenarioPlan plan, CasePlan c, int rounds, Refusals refusals, int variant, IServer server)
    {
        if (!plan.Result.Cases.Contains(c.Result))
        {
            plan.Result.Cases.Add(c.Result);
        }
        for (var round = 1; round <= rounds; round++)
        {
            await RunOnceAsync(context, plan, c, rounds, refusals, round, variant, server);
        }
    }

    private static async Task RunOnceAsync(BenchContext context, ScenarioPlan plan, CasePlan c, int rounds, Refusals refusals, int round, int i, IServer server)
    {
        var variant = plan.Servers[i].Variant;
        var label = $"{plan.Result.Name} {c.Result.Label} {c.RoundName} {round}/{rounds} {variant.Name}";
        // A measured run (a round, or a soak minute): the progress estimate follows the pace of these.
        context.Progress.Step(label, run: true);
        var outcome = await Labelled(label, () => c.RunOnceAsync(server, variant, round));
        context.Progress.RunDone();
        if (outcome.Run is { } run)
        {
            c.Result.Runs.Add(run);
        }
        context.Progress.WriteLine(outcome.Line ?? RunLine(label, c.Result, outcome.Run!, outcome.Problem));
        refusals.Check(label, outcome.Problem);
    }

    private static async Task StopAllAsync(List<IServer> servers)
    {
        foreach (var server in servers)
        {
            await server.DisposeAsync();
        }
        servers.Clear();
    }

    /// <summary>Runs a step; a failure names the step it happened in.</summary>
    public static async Task<T> Labelled<T>(string label, Func<Task<T>> step)
    {
        try
        {
            return await step();
        }
        catch (BenchException e) when (e is not RefusedException)
        {
            throw new BenchException($"{label}: {e.Message}", e.ExitCode);
        }
    }

    private static void PrintPlan(BenchContext context, ScenarioResult result, int runs, int secondsPerRun)
    {
        var o = context.Options;
        Console.WriteLine();
        Console.WriteLine($"=== {result.Name}: {result.Description}");
        Console.WriteLine($"    variants: {string.Join(", ", result.Variants.Select(v => $"{v.Name} [{v.Args}]"))}; baseline {result.Baseline}");
        Console.WriteLine($"    {runs} runs, about {TimeSpan.FromSeconds(runs * secondsPerRun):h\\:mm\\:ss}; server on CPU {o.ServerCpus}, load on CPU {o.ClientCpus}");
    }

    private static string RunLine(string label, CaseResult results, Run run, string? problem)
    {
        var figures = string.Join("  ", results.Metrics.Select(m => $"{m.Header} {m.Format(run.Value(m))}"));
        return $"  {label,-40} {figures}{(problem is null ? "" : $"  <-- {problem}")}";
    }
}
