-- wrk script: GETs the paths listed one per line in the file named by the first script
-- argument, each thread starting at its own place in the list and going round it, counting
-- answers that are not 200.
local threads = {}

function setup(thread)
    thread:set("offset", #threads)
    table.insert(threads, thread)
end

function init(args)
    paths = {}
    for line in io.lines(args[1]) do
        if line ~= "" then table.insert(paths, line) end
    end
    next_path = (offset * 7919) % #paths
    failed = 0
end

function request()
    next_path = next_path % #paths + 1
    return wrk.format("GET", paths[next_path])
end

function response(status, headers, body)
    if status ~= 200 then failed = failed + 1 end
end

function done(summary, latency, requests)
    local failures = 0
    for _, thread in ipairs(threads) do failures = failures + thread:get("failed") end
    io.write(string.format("  answers other than 200: %d\n", failures))
end
