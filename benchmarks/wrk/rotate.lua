-- wrk script: rotate over the requests listed in a file, one per line: "<path>[<TAB><If-None-Match>]".
-- Each thread starts at its own offset; done() prints the figures as one JSON line.
--   wrk -t2 -c64 -d10s -s rotate.lua http://127.0.0.1:PORT -- requests.txt

local paths = {}
local etags = {}
local position = 1

function init(args)
  for line in io.lines(args[1]) do
    local path, etag = line:match("^([^\t]+)\t?(.*)$")
    if path then
      paths[#paths + 1] = path
      etags[#etags + 1] = etag
    end
  end
  position = math.random(#paths)
end

function request()
  local index = position
  position = position % #paths + 1
  local headers = {}
  if etags[index] ~= "" then
    headers["If-None-Match"] = etags[index]
  end
  return wrk.format("GET", paths[index], headers)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors_connect": %d, "errors_read": %d, '
      .. '"errors_write": %d, "errors_status": %d, "errors_timeout": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
