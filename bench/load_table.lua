-- wrk: GET load-table with the bench token.
function init(args)
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("FLOE_BENCH_TOKEN")
end
