-- One benchmark run, configured by environment variables (set by bench/loadgen.py):
--   BENCH_PATHS   a file of request paths, used in turn
--   BENCH_METHOD  GET (default) or POST
--   BENCH_BODY    a form-encoded body for POST (the same for every request)
--   BENCH_COOKIE  a Cookie header (a signed-in session)
--   BENCH_HEADERS more headers, one "Name: value" a line
--   BENCH_ONCE    "1": stop once every path has been answered (each approval happens once)
-- done() prints one line "BENCH_RESULT {json}" with wrk's own latency percentiles (us).

local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do
  if line ~= "" then paths[#paths + 1] = line end
end
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local once = os.getenv("BENCH_ONCE") == "1"
local headers = {}
local cookie = os.getenv("BENCH_COOKIE")
if cookie and cookie ~= "" then headers["Cookie"] = cookie end
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then headers[name] = value end
end
if method == "POST" then
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  body = body or ""
else
  body = nil
end

local sent, answered = 0, 0

request = function()
  sent = sent + 1
  local i = (sent - 1) % #paths + 1
  return wrk.format(method, paths[i], headers, body)
end

if once then
  response = function(status, hdrs, resp_body)
    answered = answered + 1
    if answered >= #paths then wrk.thread:stop() end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "mean_us": %.1f, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "errors": {"connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, summary.bytes, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
