-- wrk script for the disk scenario's cold load: every request names a file picked at random, uniformly, from
-- /cold/00000.txt ... /cold/NNNNN.txt, where the first script argument is the number of files. The harness
-- names the files it generates the same way (five digits).
-- A request() callback makes wrk slower, but this load runs at disk speed, not at wrk's.

local count = 1
local threads = 0

-- Runs in the main thread before the threads start: gives each thread its own seed.
function setup(thread)
   threads = threads + 1
   thread:set("seed", threads)
end

function init(args)
   count = tonumber(args[1]) or count
   math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
   return wrk.format(nil, string.format("/cold/%05d.txt", math.random(0, count - 1)))
end

-- done() comes from report.lua, next to this script.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
