#!/usr/bin/env bash
# The network lab: four network namespaces joined by veth pairs, with the publisher's and each
# subscriber's links shaped on their own. Needs root, iproute2 (ip, tc) and nftables.
#
#   <ID>-pub   pub0 10.77.1.2/24 ──veth── srvp 10.77.1.1/24  <ID>-srv (livekit-server)
#   <ID>-sub   sub0 10.77.2.2/24 ──veth── srvs 10.77.2.1/24  <ID>-srv
#   <ID>-sub2  sub0 10.77.3.2/24 ──veth── srvt 10.77.3.1/24  <ID>-srv   (a second subscriber)
#
# Every address exists only inside these namespaces and nothing routes out of them. A link has
# two directions, each shaped at its sending end: the publisher's uplink leaves pub0, its
# downlink leaves srvp; the subscriber's downlink leaves srvs, its uplink leaves sub0.
#
#   netlab.sh up ID                       create the namespaces (replacing any of the same ID)
#   netlab.sh rate ID LINK DIR KBIT       cap LINK (pub|sub|sub2) direction DIR (up|down) at KBIT
#                                         kbit/s with a 200 ms queue (tbf); 0 removes the cap
#   netlab.sh loss ID LINK DIR PERCENT    drop PERCENT% of UDP packets at random (nftables)
#   netlab.sh udp ID block|allow          drop every UDP packet of both clients, or stop
#   netlab.sh direct ID block|allow       drop the clients' media to and from the server (UDP but
#                                         the TURN port 3478, and TCP to the ICE-TCP port 7881),
#                                         so that only its TURN server can be reached; or stop
#   netlab.sh stats ID LINK DIR           "bytes dropped" that left the shaped end so far
#   netlab.sh dropped ID                  packets the loss and UDP-block rules dropped so far
#   netlab.sh down ID                     delete the namespaces
set -euo pipefail

cmd=${1:?command}
id=${2:?lab id}
ns() { echo "${id}-$1"; }

# nftables from the system's own directories: `npm run` puts node_modules/.bin first on PATH, and
# a development dependency installs an unrelated program named `nft` there.
NFT=$(PATH=/usr/sbin:/sbin:/usr/bin:/bin command -v nft || true)
if [ "$cmd" != down ] && { [ -z "$NFT" ] || ! "$NFT" --version 2>/dev/null | grep -q nftables; }; then
  echo "netlab: nftables (nft) is not installed" >&2
  exit 2
fi

# The interface (and its namespace) that sends LINK's DIR direction.
end() {
  case "$1/$2" in
    pub/up) echo "$(ns pub) pub0" ;;
    pub/down) echo "$(ns srv) srvp" ;;
    sub/up) echo "$(ns sub) sub0" ;;
    sub/down) echo "$(ns srv) srvs" ;;
    sub2/up) echo "$(ns sub2) sub0" ;;
    sub2/down) echo "$(ns srv) srvt" ;;
    *) echo "netlab: unknown link/direction $1/$2" >&2; exit 2 ;;
  esac
}

# One nftables table per namespace holds the lab's rules; chains are made on first use.
nft_chain() {
  local n=$1 chain=$2 hook=$3
  ip netns exec "$n" "$NFT" add table inet netlab
  ip netns exec "$n" "$NFT" "add chain inet netlab $chain { type filter hook $hook priority 0; }"
}

case "$cmd" in
  up)
    "$0" down "$id" 2>/dev/null || true
    for n in srv pub sub sub2; do
      ip netns add "$(ns $n)"
      ip -n "$(ns $n)" link set lo up
    done
    ip link add pub0 netns "$(ns pub)" type veth peer name srvp netns "$(ns srv)"
    ip link add sub0 netns "$(ns sub)" type veth peer name srvs netns "$(ns srv)"
    ip link add sub0 netns "$(ns sub2)" type veth peer name srvt netns "$(ns srv)"
    ip -n "$(ns pub)" addr add 10.77.1.2/24 dev pub0
    ip -n "$(ns srv)" addr add 10.77.1.1/24 dev srvp
    ip -n "$(ns sub)" addr add 10.77.2.2/24 dev sub0
    ip -n "$(ns srv)" addr add 10.77.2.1/24 dev srvs
    ip -n "$(ns sub2)" addr add 10.77.3.2/24 dev sub0
    ip -n "$(ns srv)" addr add 10.77.3.1/24 dev srvt
    for pair in "pub pub0" "srv srvp" "sub sub0" "srv srvs" "sub2 sub0" "srv srvt"; do
      set -- $pair
      ip -n "$(ns "$1")" link set "$2" up
    done
    # Each client reaches both of the server's addresses (it announces candidates on both).
    ip -n "$(ns pub)" route add 10.77.0.0/16 via 10.77.1.1
    ip -n "$(ns sub)" route add 10.77.0.0/16 via 10.77.2.1
    ip -n "$(ns sub2)" route add 10.77.0.0/16 via 10.77.3.1
    ;;
  rate)
    read -r n dev < <(end "$3" "$4")
    kbit=${5:?kbit/s}
    if [ "$kbit" = 0 ]; then
      ip netns exec "$n" tc qdisc del dev "$dev" root 2>/dev/null || true
    else
      # Burst: 10 ms at the rate, at least a few full packets. Queue: 200 ms at the rate.
      burst=$(( kbit * 10 / 8 > 6000 ? kbit * 10 / 8 : 6000 ))
      ip netns exec "$n" tc qdisc replace dev "$dev" root tbf rate "${kbit}kbit" burst "$burst" latency 200ms
    fi
    ;;
  loss)
    read -r n dev < <(end "$3" "$4")
    pct=${5:?percent}
    nft_chain "$n" "loss_$dev" postrouting
    ip netns exec "$n" "$NFT" flush chain inet netlab "loss_$dev"
    if [ "$pct" != 0 ]; then
      ip netns exec "$n" "$NFT" add rule inet netlab "loss_$dev" oifname "$dev" meta l4proto udp numgen random mod 100 lt "$pct" counter drop
    fi
    ;;
  udp)
    for c in pub sub sub2; do
      n=$(ns $c)
      nft_chain "$n" udp_in input
      nft_chain "$n" udp_out output
      ip netns exec "$n" "$NFT" flush chain inet netlab udp_in
      ip netns exec "$n" "$NFT" flush chain inet netlab udp_out
      if [ "$3" = block ]; then
        ip netns exec "$n" "$NFT" add rule inet netlab udp_in iifname != lo meta l4proto udp counter drop
        ip netns exec "$n" "$NFT" add rule inet netlab udp_out oifname != lo meta l4proto udp counter drop
      fi
    done
    ;;
  direct)
    for c in pub sub sub2; do
      n=$(ns $c)
      nft_chain "$n" direct_in input
      nft_chain "$n" direct_out output
      ip netns exec "$n" "$NFT" flush chain inet netlab direct_in
      ip netns exec "$n" "$NFT" flush chain inet netlab direct_out
      if [ "$3" = block ]; then
        ip netns exec "$n" "$NFT" add rule inet netlab direct_in iifname != lo udp sport != 3478 counter drop
        ip netns exec "$n" "$NFT" add rule inet netlab direct_out oifname != lo udp dport != 3478 counter drop
        ip netns exec "$n" "$NFT" add rule inet netlab direct_out oifname != lo tcp dport 7881 counter drop
      fi
    done
    ;;
  stats)
    read -r n dev < <(end "$3" "$4")
    bytes=$(ip netns exec "$n" cat "/sys/class/net/$dev/statistics/tx_bytes")
    dropped=$(ip netns exec "$n" tc -s qdisc show dev "$dev" | sed -n 's/.*dropped \([0-9]*\).*/\1/p' | head -1)
    echo "$bytes ${dropped:-0}"
    ;;
  dropped)
    total=0
    for c in pub sub sub2 srv; do
      for p in $(ip netns exec "$(ns $c)" "$NFT" list table inet netlab 2>/dev/null | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'); do
        total=$((total + p))
      done
    done
    echo "$total"
    ;;
  down)
    for n in srv pub sub sub2; do
      ip netns del "$(ns $n)" 2>/dev/null || true
    done
    ;;
  *)
    echo "netlab: unknown command $cmd" >&2
    exit 2
    ;;
esac
