#!/bin/sh
# Post-promotion hook for HAProxy: moves the promoted standby into the pool
# of normal servers and takes the failed server out, through HAProxy's
# Runtime API (management guide, "Unix Socket commands"), so that users reach
# the server that now works tasks. The receiver then verifies that every
# configured load balancer routes to it (action verify_routing).
#
# HAProxy 2.6 cannot turn a backup into a normal server at run time, so the
# promoted server is added again as a normal server, "<name>-promoted", at
# the address of its URL (add server; health checks on, then ready); the
# failed one is put in maintenance. Each step may be repeated: a server that
# exists already, or is already in the state asked for, is not an error.
# The receiver matches "<name>-promoted" to the IAP server by its address, so
# the socket needs `level admin` (add server needs it anyway).
#
# Settings (the receiver passes only IAP_HA_*: set these in a wrapper, or
# edit the defaults): HAPROXY_SOCKET (a Unix socket path), HAPROXY_BACKEND.
# Needs socat (Debian: apt-get install socat).
set -eu

SOCKET=${HAPROXY_SOCKET:-/run/haproxy/admin.sock}
BACKEND=${HAPROXY_BACKEND:-iap_servers}

# The server's host:port, from its URL (default ports by scheme).
addr=${IAP_HA_TO_URL#*://}
addr=${addr%%/*}
case $addr in
*:*) ;;
*) case $IAP_HA_TO_URL in https:*) addr=$addr:443 ;; *) addr=$addr:80 ;; esac ;;
esac

api() {
	out=$(echo "$1" | socat -t 5 - "UNIX-CONNECT:$SOCKET") || { echo "haproxy: '$1' failed: cannot talk to $SOCKET"; exit 1; }
	out=$(printf '%s' "$out" | tr -s '\n' ' ' | sed 's/ *$//')
	echo "haproxy: $1 -> ${out:-ok}"
	case $out in
	"" | "New server registered." | *"Already exists a server with the same name"*) ;;
	*) exit 1 ;;
	esac
}

promoted="$BACKEND/$IAP_HA_TO-promoted"
api "add server $promoted $addr check"
api "enable health $promoted"
api "set server $promoted state ready"
api "set server $BACKEND/$IAP_HA_FROM state maint"
echo "promoted $IAP_HA_TO ($addr) into $BACKEND in place of $IAP_HA_FROM"
