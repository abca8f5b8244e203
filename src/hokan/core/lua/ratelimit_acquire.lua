-- Sliding-window rate limit (hokan.core.ratelimit.RedisRateLimiter): at most LIMIT admissions in
-- any WINDOW microseconds, counted on the Redis server's clock so that every process and
-- machine shares one clock.
--
-- KEYS[1] ratelimit:{name}   sorted set: member = admission id, score = admission time (us)
-- ARGV: limit, window (us), member id
-- Returns {admitted (1/0), now (us), wait (us): how long until a slot frees when refused}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, now, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then
  wait = 1
end
return {0, now, wait}
