-- wrk script for uploads: POST of a 1 MiB body to the URL's path (/echo streams it back).

wrk.method = "POST"
wrk.body = string.rep("0123456789abcdef", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "ABRESULT requests=%d duration_us=%d errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d p50_us=%d p99_us=%d mean_us=%d max_us=%d\n",
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
