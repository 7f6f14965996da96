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

-- done() comes from report.lua, next to this script.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
