-- wrk: GET load-table with the bench token, one request per BENCH_DELAY_MS per connection (a
-- tenant at a steady, modest rate; wrk's latency excludes the pause).
function init(args)
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end

function delay()
  return tonumber(os.getenv("BENCH_DELAY_MS") or "1")
end
