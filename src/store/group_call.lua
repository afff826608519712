-- The limit counters' group call: see GROUP_CALL in redis.rs.
local function created(key, v, by)
  return v == tonumber(by) and redis.call('TTL', key) == -1
end
local out, m = {}, tonumber(ARGV[1])
for i = 1, m do
  local v = tonumber(redis.call('INCRBYFLOAT', KEYS[i], ARGV[1+i]))
  if created(KEYS[i], v, ARGV[1+i]) then
    redis.call('DEL', KEYS[i]); v = 0
  elseif v < 0 then
    redis.call('SET', KEYS[i], '0', 'KEEPTTL'); v = 0
  end
  out[i] = tostring(v)
end
local k, a = m, m + 3
for r = 1, tonumber(ARGV[m+2]) do
  local n = tonumber(ARGV[a]); a = a + 1
  local raised, refused = {}, 0
  for i = 1, n do
    raised[i] = redis.call('INCRBYFLOAT', KEYS[k+i], ARGV[a+3*i-2])
    if tonumber(raised[i]) > tonumber(ARGV[a+3*i-3]) then refused = i; break end
  end
  if refused > 0 then
    for i = 1, refused do
      local key, by = KEYS[k+i], ARGV[a+3*i-2]
      local before = tonumber(raised[i]) - tonumber(by)
      if created(key, tonumber(raised[i]), by) then
        redis.call('DEL', key)
      else
        redis.call('SET', key, tostring(before), 'KEEPTTL')
      end
      if i == refused then out[#out+1] = i; out[#out+1] = tostring(before) end
    end
  else
    out[#out+1] = 0
    for i = 1, n do
      out[#out+1] = raised[i]
      -- A window's counter gets its expiry when created, not on every raise; an in-flight
      -- counter's (a negative ttl) is renewed by every change.
      local ttl = tonumber(ARGV[a+3*i-1])
      if ttl < 0 then
        redis.call('EXPIRE', KEYS[k+i], -ttl)
      elseif created(KEYS[k+i], tonumber(raised[i]), ARGV[a+3*i-2]) then
        redis.call('EXPIRE', KEYS[k+i], ttl)
      end
    end
  end
  k = k + n; a = a + 3*n
end
return out
