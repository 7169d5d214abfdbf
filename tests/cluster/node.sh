#!/bin/bash
# One loopback "host" of tests/test_launcher.py. Runs as PID 1 of its own PID and mount
# namespaces, inside the test's network namespace (loopback only):
#   ip netns exec NS unshare --pid --fork --kill-child --mount-proc --mount node.sh ROLE ROOT VENV LISTEN...
# Its own /root (ROOT/ROLE/home) and /tmp/ray, like a separate machine's disk; the test's Python
# environment VENV seen through an overlay, so what `ray up` installs on this host (pip install -e
# of the synced project) lands in this host's own layer and never in VENV itself. Killing this
# process ends every process of the host.
set -euo pipefail
role=$1 root=$2 venv=$3; shift 3
host=$root/$role
mount --make-rprivate /

# A path under /root (pyenv's Python behind the venv, or the venv itself) must stay visible
# once /root is this host's home: bind it to the same place inside that home.
keep_visible() {
  case $1 in
    /root/*) mkdir -p "$host/home/${1#/root/}"; mount --rbind "$1" "$host/home/${1#/root/}" ;;
  esac
}
mkdir -p "$host/upper" "$host/work"
mount -t overlay overlay -o "lowerdir=$venv,upperdir=$host/upper,workdir=$host/work" "$venv"
keep_visible "$venv"
keep_visible "$("$venv/bin/python" -c 'import sys; print(sys.base_prefix)')"
mount --rbind "$host/home" /root
mkdir -p /tmp/ray && mount --bind "$host/tmpray" /tmp/ray
mkdir -p /run/sshd

listen=()
for address in "$@"; do listen+=(-o "ListenAddress=$address"); done
exec /usr/sbin/sshd -D -e -f "$root/ssh/sshd_config" -o "PidFile=$host/sshd.pid" "${listen[@]}"
