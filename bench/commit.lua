-- wrk: commits with no requirements that each set one property per thread, `bench.<thread>`, to
-- one more than the thread's acknowledged commits so far. Run with as many threads as connections, so
-- each thread has one connection and its requests are sequential: afterwards the property must equal
-- the thread's count of acknowledged commits (or one more, for a request in flight when wrk stopped).
-- BENCH_SPREAD=1 sends thread N to table `<url>N` (its own table); otherwise all share `<url>`.
-- BENCH_TID_OFFSET numbers this process's threads after another wrk's (two replicas, one table).
-- BENCH_RETRY_AFTER_MS > 0: after a 503 the next request of the thread waits that long, as a client
-- honouring Retry-After does (wrk's delay() is per thread, so it is the thread's next request).
local threads = {}
local retry_after_ms = tonumber(os.getenv("BENCH_RETRY_AFTER_MS") or "0")
local offset = tonumber(os.getenv("BENCH_TID_OFFSET") or "0")
function setup(thread)
  thread:set("tid", #threads + 1 + offset)
  table.insert(threads, thread)
end
function init(args)
  ok = 0
  conflicts = 0
  shed = 0
  backoffs = 0
  path = wrk.path
  if os.getenv("BENCH_SPREAD") == "1" then path = wrk.path .. tid end
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  local body = '{"requirements":[],"updates":[{"action":"set-properties","updates":{"bench.' .. tid .. '":"' .. (ok + 1) .. '"}}]}'
  return wrk.format("POST", path, nil, body)
end
function response(status)
  if status == 200 then ok = ok + 1 elseif status == 409 then conflicts = conflicts + 1
  elseif status == 503 then shed = shed + 1; backoffs = backoffs + 1 end
end
if retry_after_ms > 0 then
  function delay()
    if backoffs > 0 then
      backoffs = backoffs - 1
      return retry_after_ms
    end
    return 0
  end
end
function done()
  local total, c = 0, 0
  for _, t in ipairs(threads) do
    total = total + t:get("ok")
    c = c + t:get("conflicts")
    io.write("THREAD " .. t:get("tid") .. " " .. t:get("ok") .. "\n")
  end
  io.write("ACKED " .. total .. "\nCONFLICTS " .. c .. "\n")
end
