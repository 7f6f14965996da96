namespace AbBench;

/// <summary>
/// Every scenario, in the order --help and LATEST.md list them. A wrk scenario of one load at one path is one line
/// here; anything else is a <see cref="Scenario"/> of its own in this folder.
/// </summary>
internal static class ScenarioRegistry
{
    public static readonly IReadOnlyList<Scenario> All =
    [
        new WrkScenario("plaintext", "GET /plaintext at 64 and 256 connections (wrk)",
            "GET /plaintext, HTTP/1.1 keep-alive (wrk)", "/plaintext", "report.lua", [], [64, 256]) { Finish = TransportTargets.Plaintext },
        new WrkScenario("json", "GET /json at 64 and 256 connections (wrk)",
            "GET /json, HTTP/1.1 keep-alive (wrk)", "/json", "report.lua", [], [64, 256]) { Finish = TransportTargets.Json },
        new WrkScenario("pipelined", "GET /plaintext, HTTP/1.1 pipelining depth 16, 256 connections (wrk)",
            "GET /plaintext, HTTP/1.1 pipelining depth 16 (wrk)", "/plaintext", "pipeline.lua", ["16"], [256]) { Latency = false },
        new WrkScenario("connections", "GET /plaintext at 64, 256, 1024 and 8192 connections, plus scaling vs 256 (wrk)",
            "GET /plaintext at rising connection counts (wrk)", "/plaintext", "report.lua", [], [64, 256, 1024, 8192]) { Finish = ConnectionScaling.Add },
        new WrkScenario("upload", "POST of a 1 MiB body to /echo, 64 connections (wrk)",
            "POST of a 1 MiB body to /echo, streamed back (wrk)", "/echo", "upload.lua", [], [64]),
        new IdleScenario(),
        new H2Scenario(),
        new TlsScenario(),
        new GrpcScenario(),
        new StaticScenario(),
        new ProxyScenario(),
        new DiskScenario(),
        new SoakScenario(),
        new RollingScenario(),
    ];

    public static Scenario? Find(string name) => All.FirstOrDefault(s => s.Name == name);
}
