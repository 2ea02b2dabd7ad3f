-- wrk script for bench/serve_load.sh: POSTs one sentence per request to
-- /translate as LibreTranslate JSON, taking the sentences in turn from a
-- file, each wrk thread from its own starting line.
--
-- Arguments after wrk's "--": SENTENCES_FILE MAX_REQUESTS_PER_THREAD
-- STOP_FOLDER. A thread stops after MAX_REQUESTS_PER_THREAD responses and
-- creates STOP_FOLDER/thread-N, so that the caller can end wrk early with
-- SIGINT when every thread has stopped (wrk itself always waits for -d).
--
-- done() prints one line that serve_load.sh parses:
-- RESULT requests=N duration_s=S rps=R p50_ms=A p99_ms=B status_errors=N
-- socket_errors=N timeouts=N

local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
end

-- Returns s as a JSON string literal.
local function json_string(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end

local requests = {}
local next_request = 1
local responses = 0
local max_responses = 0
local stop_folder = nil

function init(args)
  local path = args[1]
  max_responses = tonumber(args[2]) or 0
  stop_folder = args[3]
  local file = assert(io.open(path, "r"), "cannot open sentences file " .. tostring(path))
  local headers = { ["Content-Type"] = "application/json" }
  for line in file:lines() do
    if line:match("%S") then
      local body = '{"q": ' .. json_string(line) .. ', "source": "en", "target": "de"}'
      requests[#requests + 1] = wrk.format("POST", nil, headers, body)
    end
  end
  file:close()
  assert(#requests > 0, "no sentences in " .. tostring(path))
  -- Threads start at different lines so that they do not send the same
  -- sentence at the same time.
  next_request = (id * 97) % #requests + 1
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end

function response(status, headers, body)
  responses = responses + 1
  if max_responses > 0 and responses >= max_responses then
    if stop_folder then
      local marker = io.open(stop_folder .. "/thread-" .. id, "w")
      if marker then marker:close() end
    end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.2f p50_ms=%.2f p99_ms=%.2f " ..
    "status_errors=%d socket_errors=%d timeouts=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write, e.timeout))
end
