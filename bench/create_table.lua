-- wrk: POST create-table with a unique name per request.
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  ok = 0
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local body = '{"name":"t_' .. tid .. '_' .. counter .. '","schema":{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":true}]}}'
  return wrk.format("POST", nil, nil, body)
end
function response(status)
  if status == 200 then ok = ok + 1 end
end
function done()
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("ok") end
  io.write("ACKED " .. total .. "\n")
end
