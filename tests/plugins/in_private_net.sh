#!/bin/sh
# in_private_net.sh COMMAND [ARG...]: runs COMMAND in a network namespace of its own with
# only loopback up (for servers that bind every interface, such as DynamoDB Local): nothing
# in it can be reached from outside, and it reaches nothing outside. As root, a plain
# network namespace; otherwise inside a user namespace that maps the caller to root.
set -eu
if [ "$(id -u)" -eq 0 ]; then
  exec unshare --net -- sh -c 'ip link set lo up && exec "$@"' in_private_net "$@"
fi
exec unshare --user --map-root-user --net -- sh -c 'ip link set lo up && exec "$@"' in_private_net "$@"
