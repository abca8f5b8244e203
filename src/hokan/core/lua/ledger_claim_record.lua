-- Count one record against a day's record limit (hokan.core.budget.RedisLedger.claim_record).
--
-- KEYS[1] P..day:{YYYY-MM-DD}:records   records counted that day (P as in ledger_reserve.lua)
-- KEYS[2] P..day:{YYYY-MM-DD}:keys      set of the record keys counted
-- ARGV: record key, daily limit, expire-at (unix s)
-- Returns 1 when the record may be processed (counted now or before), 0 at the limit.
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return 1
end
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[2]) then
  return 0
end
redis.call('INCR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
redis.call('EXPIREAT', KEYS[2], ARGV[3])
return 1
