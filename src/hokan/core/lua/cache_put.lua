-- LLM cache put (hokan.core.cache.RedisCache.put), atomic: store, purge expired, evict LRU.
-- KEYS[1] entry hash, KEYS[2] LRU sorted set, KEYS[3] expiry sorted set
-- ARGV[1] the cache key, ARGV[2] response JSON, ARGV[3] usage JSON, ARGV[4] provider,
-- ARGV[5] model, ARGV[6] now (epoch seconds), ARGV[7] ttl (seconds), ARGV[8] max entries,
-- ARGV[9] the prefix of the scope's entry keys ("llmcache:{scope}:e:")
-- Returns the number of entries removed (expired or evicted).
local now = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local max_entries = tonumber(ARGV[8])
local prefix = ARGV[9]
local expires = now + ttl
redis.call('HSET', KEYS[1], 'response', ARGV[2], 'usage', ARGV[3], 'provider', ARGV[4], 'model', ARGV[5],
  'created_at', ARGV[6], 'expires_at', string.format('%.6f', expires))
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZADD', KEYS[3], expires, ARGV[1])
local removed = 0
local function remove(member)
  redis.call('DEL', prefix .. member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
  removed = removed + 1
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  remove(member)
end
local excess = redis.call('ZCARD', KEYS[2]) - max_entries
if excess > 0 then
  for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
    remove(member)
  end
end
return removed
