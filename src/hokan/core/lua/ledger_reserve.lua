-- Reserve calls and cost of one month for the work KEY (hokan.core.budget.RedisLedger.reserve).
-- Atomic: Redis runs a script without interleaving any other command, so no two processes can
-- both pass the limit check.
--
-- Keys of one ledger scope: P = "usage:" for leads (document 000 §8), "usage:{scope}:" otherwise.
-- KEYS[1] P..reservation:{key}      hash: id, key, month, calls, estimate, status, created_at, ...
-- KEYS[2] P..{month}:calls          committed calls (document 000 §8)
-- KEYS[3] P..{month}:cost           committed cost, integer micro-USD (document 000 §8)
-- KEYS[4] P..{month}:reserved_calls
-- KEYS[5] P..{month}:reserved_cost  integer micro-USD
-- KEYS[6] P..{month}:open           sorted set: key -> created_at (s), for settle_stale
-- KEYS[7] usage:reservation_seq     counter giving reservation ids (shared by the scopes)
-- ARGV: key, month, calls, estimate (micro-USD), call limit, cost limit (micro-USD), expire-at (unix s)
--
-- Returns {code, id, status, month, calls, estimate, used_calls, used_cost}:
--   code 1 = reserved now (new, or a released reservation of the same key re-opened),
--   code 0 = the key has a reservation that is not released: returned as it is,
--   code -1 / -2 = the monthly call / cost limit would be passed: nothing claimed.
local now = tonumber(redis.call('TIME')[1])
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'released' then
  local h = redis.call('HMGET', KEYS[1], 'id', 'month', 'calls', 'estimate')
  return {0, tonumber(h[1]), status, h[2], tonumber(h[3]), tonumber(h[4]), 0, 0}
end
local calls = tonumber(ARGV[3])
local estimate = tonumber(ARGV[4])
local used_calls = tonumber(redis.call('GET', KEYS[2]) or '0') + tonumber(redis.call('GET', KEYS[4]) or '0')
local used_cost = tonumber(redis.call('GET', KEYS[3]) or '0') + tonumber(redis.call('GET', KEYS[5]) or '0')
if used_calls + calls > tonumber(ARGV[5]) then
  return {-1, 0, 'monthly_calls', ARGV[2], calls, estimate, used_calls, used_cost}
end
if used_cost + estimate > tonumber(ARGV[6]) then
  return {-2, 0, 'monthly_cost', ARGV[2], calls, estimate, used_calls, used_cost}
end
local id
if status then
  id = tonumber(redis.call('HGET', KEYS[1], 'id'))
else
  id = redis.call('INCR', KEYS[7])
end
-- INCRBY 0 creates the committed counters too, so that every key of the month gets its expiry.
redis.call('INCRBY', KEYS[2], 0)
redis.call('INCRBY', KEYS[3], 0)
redis.call('INCRBY', KEYS[4], calls)
redis.call('INCRBY', KEYS[5], estimate)
redis.call('HSET', KEYS[1], 'id', id, 'key', ARGV[1], 'month', ARGV[2], 'calls', calls, 'estimate', estimate,
  'status', 'reserved', 'created_at', now, 'actual', '', 'settled_at', '', 'expire_at', ARGV[7])
redis.call('ZADD', KEYS[6], now, ARGV[1])
for i = 1, 6 do
  redis.call('EXPIREAT', KEYS[i], ARGV[7])
end
return {1, id, 'reserved', ARGV[2], calls, estimate, used_calls, used_cost}
