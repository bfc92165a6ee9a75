-- wrk script: each connection waits a random 48-80 ms (mean 64 ms) before its next request, so
-- 64 connections send ~1,000 requests/s spread evenly, not in step (bench/agent.py).
math.randomseed(os.time())
function delay()
  return math.random(48, 80)
end
