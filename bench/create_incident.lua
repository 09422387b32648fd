-- wrk script: POST /api/v1/incidents with a fixed body; the token comes from the command line.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"收费模块无法录入","customer_id":1,"subcategory":"module_input_blocked","source_system":"HIS","reporter":{"name":"王医生"}}'
