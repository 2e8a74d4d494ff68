# contrib/bench/perfdhcp.awk: reads the output of a perfdhcp -4 run (full
# DORA), or of several run at once one after the other (their counts are
# added up), and prints one line, "ACKS/S DROPS% COST SHORT%":
#   ACKS/S  ACKs received per second of the run (-v period=SECONDS)
#   DROPS%  the worse of DISCOVER-OFFER and REQUEST-ACK, from the counts
#           (sent, received), not from perfdhcp's "drops ratio" (printed
#           as -nan when nothing was sent); a section that sent nothing or
#           is missing counts 100
#   COST    the server's CPU time per ACK in µs (-v ticks=CLOCK_TICKS
#           -v hz=CLK_TCK), 0 without ACKs
#   SHORT%  how much of the offered load (-v offered=RATE) perfdhcp did not
#           send: above a few %, the load tool, not the server, was the limit
# Every field is always printed (a field left empty shifts the next into its
# place for `read`: a step without drops once read as "drops 114 %", its
# cost). Checked on fixtures by parse_test.go.
/^\*\*\*Statistics for: / { sec = $3; gsub(/\*/, "", sec) }
/^sent packets:/     { sent[sec] += $3; seen[sec] = 1 }
/^received packets:/ { rcvd[sec] += $3 }
function droppct(s) {
  if (!seen[s] || sent[s] <= 0) return 100
  if (rcvd[s] >= sent[s]) return 0
  return 100 * (sent[s] - rcvd[s]) / sent[s]
}
END {
  do_ = droppct("DISCOVER-OFFER"); ra = droppct("REQUEST-ACK")
  drops = do_ > ra ? do_ : ra
  acks = rcvd["REQUEST-ACK"] + 0
  cost = acks > 0 && hz > 0 ? ticks * 1e6 / hz / acks : 0
  want = offered * period
  short = want > 0 ? 100 * (1 - sent["DISCOVER-OFFER"] / want) : 0
  if (short < 0) short = 0
  printf "%.0f %.2f %.0f %.1f\n", (period > 0 ? acks / period : 0), drops, cost, short
}
