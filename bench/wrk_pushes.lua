-- wrk script: replays pre-signed app pushes, one slice of the file per thread, and prints
-- latency percentiles wrk does not show by default. Records: id \t timestamp \t signature \t body
local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, total = args[1], tonumber(args[2])
  local records = {}
  local n = 0
  for line in io.lines(path) do
    if n % total == index then
      local id, ts, sig, body = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)")
      table.insert(records, {id = id, ts = ts, sig = sig, body = body})
    end
    n = n + 1
  end
  position = 0
  pushes = records
end

function request()
  position = position + 1
  local r = pushes[((position - 1) % #pushes) + 1]
  return wrk.format("POST", "/channels/app/messages", {
    ["content-type"] = "application/json",
    ["webhook-id"] = r.id,
    ["webhook-timestamp"] = r.ts,
    ["webhook-signature"] = r.sig,
  }, r.body)
end

function done(summary, latency, requests)
  io.write(string.format("wrk: requests=%d non2xx=%d errors=%d seconds=%.2f p50=%.1f p95=%.1f p99=%.1f\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
