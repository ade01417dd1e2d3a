-- wrk script for the kefu benchmark (run wrk with one thread: -t1).
--   wrk -t1 -s bench/wrk.lua URL -- BODIES [START]  POST the lines of BODIES (JSON) in turn, as
--                                                   application/json, from line START+1 (default 0):
--                                                   where the previous run stopped, so no text repeats
--   wrk -t1 -s bench/wrk.lua URL -- -               GET URL (the trivial endpoint)
-- Bodies without a session_id start a new session on every request; bodies with one reuse a pool.
-- done() prints one line "BENCH_JSON {...}" that bench/httpload.py parses (latencies in microseconds).

local bodies = {}
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  local path = args[1]
  if path ~= nil and path ~= "-" then
    for line in io.lines(path) do
      if #line > 0 then
        bodies[#bodies + 1] = line
      end
    end
    counter = tonumber(args[2]) or 0
  end
end

function request()
  if #bodies == 0 then
    return wrk.format("GET")
  end
  local body = bodies[(counter % #bodies) + 1]
  counter = counter + 1
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
