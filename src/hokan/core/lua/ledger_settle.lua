-- Settle one open reservation (hokan.core.budget.RedisLedger.commit / release / settle_stale).
-- Only the transition out of "reserved" moves counters, so settling twice is harmless.
--
-- KEYS[1..6] as in ledger_reserve.lua, for the reservation's month.
-- ARGV: new status ("committed" | "released" | "expired"), actual cost in micro-USD
--       (-1 = the reservation's estimate), key
-- Returns 1 when this call settled it, 0 when it was not open.
local h = redis.call('HMGET', KEYS[1], 'status', 'calls', 'estimate', 'expire_at')
if h[1] ~= 'reserved' then
  return 0
end
local calls = tonumber(h[2])
local estimate = tonumber(h[3])
local actual = tonumber(ARGV[2])
if actual < 0 then
  actual = estimate
end
redis.call('DECRBY', KEYS[4], calls)
redis.call('DECRBY', KEYS[5], estimate)
local recorded = ''
if ARGV[1] ~= 'released' then
  redis.call('INCRBY', KEYS[2], calls)
  redis.call('INCRBY', KEYS[3], actual)
  recorded = actual
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'actual', recorded, 'settled_at', redis.call('TIME')[1])
redis.call('ZREM', KEYS[6], ARGV[3])
if h[4] then
  for i = 2, 3 do
    redis.call('EXPIREAT', KEYS[i], h[4])
  end
end
return 1
