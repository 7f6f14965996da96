-- wrk script for uploads: POST of a 1 MiB body to the URL's path (/echo streams it back).

wrk.method = "POST"
wrk.body = string.rep("0123456789abcdef", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"

-- done() comes from report.lua, next to this script.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
