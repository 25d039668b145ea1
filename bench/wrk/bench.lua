-- wrk script of bench/run.sh: the request comes from the environment, and `done` prints one
-- JSON line (prefixed `BENCH_JSON `) with the throughput and the p50/p90/p99/p99.9 latency.
--
--   BENCH_METHOD   GET (default) or POST
--   BENCH_BODY     request body (POST)
--   BENCH_HEADERS  headers, one `Name: value` per line
--   BENCH_COOKIES  a file of `Cookie` header values, one per line: request i uses line i
--                  (each wrk thread takes every BENCH_THREADS-th line); used to make every
--                  request a session-cache miss. When the file runs out, it starts over, so
--                  compare the run's request count with the number of lines.
--   BENCH_THREADS  wrk's -t, for the stride above
--   BENCH_REFRESH_TOKENS  a file of refresh tokens, one per line (one per connection and a few
--                  spare: wrk asks for one request more than it has connections at the start):
--                  every request is a refresh_token grant (BENCH_BODY's fields are sent too,
--                  e.g. client credentials), and the rotated token in each answer goes back into
--                  the thread's pool for a later request. A thread whose pool is empty sends an
--                  unknown token, which the provider refuses: it shows as a non-2xx answer.
--   BENCH_SCRIPTED =1: BENCH_BODY's request through the same Lua calls as the refresh rows (the
--                  request formatted for each request, each answer searched for a refresh
--                  token), so that a client_credentials row paired with a refresh row costs
--                  wrk what the refresh row does: on a machine that wrk shares, a ratio of the
--                  two is then the server's difference, not the client's (about 7 µs of wrk's
--                  CPU per request on the 2-core bench machine).

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then wrk.body = body end
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
  if name then wrk.headers[name] = value end
end

local cookies_file = os.getenv("BENCH_COOKIES")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

if cookies_file and cookies_file ~= "" then
  local cookies = {}
  local pos
  function init(args)
    for line in io.lines(cookies_file) do
      if line ~= "" then cookies[#cookies + 1] = line end
    end
    pos = (tid or 0) + 1
  end
  function request()
    local c = cookies[pos]
    pos = pos + nthreads
    if pos > #cookies then pos = ((tid or 0) % nthreads) + 1 end
    wrk.headers["Cookie"] = c
    return wrk.format()
  end
end

local refresh_file = os.getenv("BENCH_REFRESH_TOKENS")
local scripted = os.getenv("BENCH_SCRIPTED") == "1"
if (refresh_file and refresh_file ~= "") or scripted then
  local pool = {}
  local extra = (body and body ~= "") and ("&" .. body) or ""
  function init(args)
    if scripted then return end
    local i = 0
    for line in io.lines(refresh_file) do
      if line ~= "" then
        if i % nthreads == (tid or 0) then pool[#pool + 1] = line end
        i = i + 1
      end
    end
  end
  function request()
    if scripted then return wrk.format("POST", nil, nil, body) end
    local t = table.remove(pool) or "pool-exhausted"
    return wrk.format("POST", nil, nil, "grant_type=refresh_token&refresh_token=" .. t .. extra)
  end
  function response(status, headers, answer)
    local t = answer:match('"refresh_token"%s*:%s*"([^"]+)"')
    if t and not scripted then pool[#pool + 1] = t end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
