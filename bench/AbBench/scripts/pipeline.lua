-- wrk script for HTTP/1.1 pipelining: each write carries `depth` requests for the URL's path
-- (first script argument, default 16); wrk counts every response.

local depth = 16
local pipeline

function init(args)
   depth = tonumber(args[1]) or depth
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   pipeline = table.concat(r)
end

function request()
   return pipeline
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "ABRESULT requests=%d duration_us=%d errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d p50_us=%d p99_us=%d mean_us=%d max_us=%d\n",
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
