-- Mixed GETs for `make bench`: symbols, history, rank (plain and normalised), one market's
-- rank, alerts, in turn on every connection.
local paths = {
  "/symbols", "/symbols/b0007usd/history", "/rank", "/rank?normalize=true",
  "/symbols/b0007usd/rank", "/alerts",
}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
