-- wrk script for a plain request (the URL's path, wrk's default method): it only adds the result line.
-- pipeline.lua and upload.lua load it for the same done().
-- No response() callback: defining one makes wrk slower.

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "ABRESULT requests=%d bytes=%d duration_us=%d errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d p50_us=%d p99_us=%d mean_us=%d max_us=%d\n",
      summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
