--! keys: 1
-- KEYS in-flight list; ARGV ids...
local ids = {}
for i = 1, #ARGV do ids[ARGV[i]] = true end
forget(KEYS[1], ids)
return 1
