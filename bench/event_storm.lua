-- wrk script: PagerDuty v2 triggers over N dedup keys (first script argument, default 1000)
-- named <prefix>-<n> (second argument), counting the answers wrk saw.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    keys = tonumber(args[1] or "1000")
    prefix = args[2] or "storm"
    accepted = 0
    other = 0
    math.randomseed(os.time() + math.floor(os.clock() * 1e6))
    wrk.headers["Content-Type"] = "application/json"
end

function request()
    local key = prefix .. "-" .. math.random(keys)
    local body = '{"event_action":"trigger","dedup_key":"' .. key .. '","payload":{"summary":"Disk almost full on '
        .. key .. '","source":"' .. key .. '","severity":"warning","custom_details":{"customer":"C1"}}}'
    -- nil headers: wrk.headers, which hold the Authorization given with -H.
    return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
    if status == 202 then
        accepted = accepted + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local a, o = 0, 0
    for _, thread in ipairs(threads) do
        a = a + thread:get("accepted")
        o = o + thread:get("other")
    end
    io.write(string.format("answers: %d accepted (202), %d other\n", a, o))
end
