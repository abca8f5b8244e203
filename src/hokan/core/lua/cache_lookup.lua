-- LLM cache lookup (hokan.core.cache.RedisCache.lookup), atomic.
-- KEYS[1] entry hash, KEYS[2] LRU sorted set, KEYS[3] expiry sorted set, KEYS[4] stats hash
-- ARGV[1] the cache key, ARGV[2] now (epoch seconds)
-- Returns the entry's fields (HGETALL) on a hit, nil on a miss; counts the hit or the miss.
local now = tonumber(ARGV[2])
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then
  redis.call('HINCRBY', KEYS[4], 'misses', 1)
  return false
end
local expires = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if expires == nil or expires <= now then
  -- expired by the caller's clock though Redis has not dropped it yet: a miss, and gone
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HINCRBY', KEYS[4], 'misses', 1)
  return false
end
redis.call('HINCRBY', KEYS[1], 'hits', 1)
redis.call('ZADD', KEYS[2], 'XX', now, ARGV[1])
redis.call('HINCRBY', KEYS[4], 'hits', 1)
return fields
