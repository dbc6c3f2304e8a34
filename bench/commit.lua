-- wrk: commits that each add one unique table property (no requirements), so every 200 must leave
-- its property in the final metadata; 409s are counted.
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  ok = 0
  conflicts = 0
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("FLOE_BENCH_TOKEN")
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local body = '{"requirements":[],"updates":[{"action":"set-properties","updates":{"bench.' .. tid .. '.' .. counter .. '":"v"}}]}'
  return wrk.format("POST", nil, nil, body)
end
function response(status)
  if status == 200 then ok = ok + 1 elseif status == 409 then conflicts = conflicts + 1 end
end
function done()
  local total, c = 0, 0
  for _, t in ipairs(threads) do total = total + t:get("ok"); c = c + t:get("conflicts") end
  io.write("ACKED " .. total .. "\nCONFLICTS " .. c .. "\n")
end
