-- wrk: GET load-table with the bench token (and, with BENCH_DELEGATION set, asking for vended
-- credentials).
function init(args)
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  local delegation = os.getenv("BENCH_DELEGATION")
  if delegation and delegation ~= "" then
    wrk.headers["X-Iceberg-Access-Delegation"] = delegation
  end
end
