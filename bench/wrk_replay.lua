-- wrk script: replays requests prepared in advance (signed, and for WeChat encrypted), one
-- slice of the file per thread, as POSTs; prints the latency percentiles wrk does not show by
-- default. Records, one a line: path \t name: value \t ... \t body
local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    table.insert(fields, field)
  end
  return fields
end

function init(args)
  local path, total = args[1], tonumber(args[2])
  local records = {}
  local n = 0
  for line in io.lines(path) do
    if n % total == index then
      local fields = split(line)
      local headers = {}
      for i = 2, #fields - 1 do
        local name, value = fields[i]:match("^([^:]+): (.*)$")
        headers[name] = value
      end
      table.insert(records, wrk.format("POST", fields[1], headers, fields[#fields]))
    end
    n = n + 1
  end
  position = 0
  prepared = records
end

function request()
  position = position + 1
  return prepared[((position - 1) % #prepared) + 1]
end

function done(summary, latency, requests)
  io.write(string.format("wrk: requests=%d non2xx=%d errors=%d seconds=%.2f p50=%.1f p95=%.1f p99=%.1f\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
