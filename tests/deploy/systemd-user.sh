# A real `systemd --user` manager running config/systemd/keyward.service, on a machine whose PID 1
# is not systemd. Run as root inside a private mount namespace (`unshare --mount --propagation
# private`), by tests/deploy/systemd_live.rs, which reads what this prints on stdout:
#   skip: REASON      this machine cannot host a user manager; nothing was started
#   fail: REASON      the unit did not start (its status and log follow on stderr)
#   pid: N            the unit's main process is running
#   lock: TEXT        what `keyward lock`, run as the user, printed (after a "lock" line on stdin)
# It stops the unit and the manager, and removes its control groups, when stdin ends.
#
# Arguments: UID HOST_HOME BINARY WORK NAME
#   HOST_HOME  the user's home, prepared by the test; mounted at /home/keyward-test
#   BINARY     the keyward binary; mounted at ~/.cargo/bin/keyward, where the unit expects it
#   WORK       a directory the user may write: the manager's log
#   NAME       the control group to create under each hierarchy
set -u
uid=$1 host_home=$2 binary=$3 work=$4 name=$5
home=/home/keyward-test

skip() { echo "skip: $*"; exit 0; }

# What a booted systemd machine has and this one lacks: /run as its own tmpfs with systemd's
# directories (the manager refuses to start without /run/systemd/system), the inaccessible nodes
# it masks paths with, and the unit-root staging point. The canary and the resolver stub let the
# test see what the unit hides from keyward and what it keeps.
mount -t tmpfs -o mode=0755 tmpfs /run || skip "cannot mount a tmpfs on /run"
mkdir -p /run/systemd/system /run/systemd/unit-root /run/systemd/resolve /run/credentials /run/user
printf 'nameserver 127.0.0.53\n' > /run/systemd/resolve/stub-resolv.conf
printf 'not for keyward\n' > /run/keyward-test-canary
mkdir -m 0755 /run/systemd/inaccessible
mkdir -m 0000 /run/systemd/inaccessible/dir
install -m 0000 /dev/null /run/systemd/inaccessible/reg
mkfifo -m 0000 /run/systemd/inaccessible/fifo
mknod -m 0000 /run/systemd/inaccessible/chr c 0 0
mknod -m 0000 /run/systemd/inaccessible/blk b 0 0
mkdir -m 0700 "/run/user/$uid" && chown "$uid:$uid" "/run/user/$uid"

# The user's home under /home, where ProtectHome= acts, and the binary where cargo install puts it.
mount -t tmpfs -o mode=0755 tmpfs /home || skip "cannot mount a tmpfs on /home"
mkdir "$home" && mount --bind "$host_home" "$home"
mount --bind "$binary" "$home/.cargo/bin/keyward" || skip "cannot bind-mount the keyward binary"

groups=""
manager=""
as_user() {
  setpriv --reuid="$uid" --regid="$uid" --clear-groups \
    env -i HOME="$home" USER=keyward-test LOGNAME=keyward-test XDG_RUNTIME_DIR="/run/user/$uid" \
    PATH=/usr/local/bin:/usr/bin:/bin "$@"
}

cleanup() {
  if [ -n "$manager" ]; then
    as_user systemctl --user stop keyward.service >/dev/null 2>&1
    kill "$manager" 2>/dev/null
    wait "$manager" 2>/dev/null
  fi
  for group in $groups; do
    echo $$ > "$(dirname "$group")/cgroup.procs" 2>/dev/null
  done
  # Whatever is left in the groups (nothing, when the manager stopped cleanly) goes with them.
  for group in $groups; do
    for pid in $(find "$group" -name cgroup.procs -exec cat {} +); do
      kill -9 "$pid" 2>/dev/null
    done
  done
  sleep 0.2
  for group in $groups; do
    find "$group" -depth -type d -exec rmdir {} + 2>/dev/null
  done
}
trap cleanup EXIT

# A control group the user owns, in every hierarchy systemd uses here.
if [ -f /sys/fs/cgroup/cgroup.procs ]; then
  parents=/sys/fs/cgroup
else
  parents="/sys/fs/cgroup/unified /sys/fs/cgroup/systemd"
fi
for parent in $parents; do
  [ -d "$parent" ] || skip "no control group hierarchy at $parent"
  mkdir "$parent/$name" 2>/dev/null || skip "cannot create a control group under $parent"
  groups="$groups $parent/$name"
  chown -R "$uid:$uid" "$parent/$name"
  echo $$ > "$parent/$name/cgroup.procs" || skip "cannot join the control group $parent/$name"
done

# Not through as_user: a function run in the background is a subshell, and $! would be its pid
# rather than the manager's. setpriv and env exec, so $! here is the manager itself.
setpriv --reuid="$uid" --regid="$uid" --clear-groups \
  env -i HOME="$home" USER=keyward-test LOGNAME=keyward-test XDG_RUNTIME_DIR="/run/user/$uid" \
  PATH=/usr/local/bin:/usr/bin:/bin /lib/systemd/systemd --user >"$work/manager.log" 2>&1 &
manager=$!
for _ in $(seq 100); do
  [ -S "/run/user/$uid/systemd/private" ] && break
  kill -0 "$manager" 2>/dev/null || break
  sleep 0.1
done
[ -S "/run/user/$uid/systemd/private" ] || { cat "$work/manager.log" >&2; skip "systemd --user did not start here"; }

if ! as_user systemctl --user start keyward.service; then
  echo "fail: systemctl --user start keyward.service failed"
  as_user systemctl --user --no-pager status keyward.service >&2
  exit 0
fi
echo "pid: $(as_user systemctl --user show --property=MainPID --value keyward.service)"

while read -r command; do
  case "$command" in
    lock) echo "lock: $(as_user "$home/.cargo/bin/keyward" lock 2>&1 | tr '\n' ' ')" ;;
    status) as_user systemctl --user --no-pager status keyward.service >&2 ;;
  esac
done
