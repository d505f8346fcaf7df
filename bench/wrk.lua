-- Replays the raw HTTP requests bench/loadgen.py prepared (request line, headers and body,
-- byte for byte) in a fixed cycle, and writes the run's counts and latency as one JSON object.
--   BENCH_WRK_REQUESTS  directory holding 00000.http, 00001.http, ...
--   BENCH_WRK_OUTPUT    file the JSON summary is written to
-- Requests are read once per thread in init(); request() only hands out prepared strings, so
-- wrk spends no Lua time building bodies. No response() callback: wrk then skips Lua per
-- response, and counts every status >= 400 in summary.errors.status.

local prepared = {}
local next_index = 1

function init(args)
  local dir = os.getenv("BENCH_WRK_REQUESTS")
  local index = 0
  while true do
    local file = io.open(string.format("%s/%05d.http", dir, index), "rb")
    if not file then break end
    prepared[#prepared + 1] = file:read("*a")
    file:close()
    index = index + 1
  end
  if #prepared == 0 then
    error("no prepared requests in " .. tostring(dir))
  end
end

function request()
  local raw = prepared[next_index]
  next_index = next_index % #prepared + 1
  return raw
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_WRK_OUTPUT"), "w"))
  local errors = summary.errors
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
  out:close()
end
