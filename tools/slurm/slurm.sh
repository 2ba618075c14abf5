#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for cgflow's tests and for trying qlaunch.
#
#   tools/slurm/slurm.sh install   apt-get install slurm-wlm munge (quick when installed)
#   tools/slurm/slurm.sh start     munged + slurmctld + slurmd; waits until the node is idle
#   tools/slurm/slurm.sh check     sbatch --wrap hostname and wait for it to complete
#   tools/slurm/slurm.sh stop      scancel every job, then stop slurmd, slurmctld, munged
#   tools/slurm/slurm.sh status    daemons, sinfo, squeue (exit 0 when all is up, else 3)
#
# Runs as root without systemd (the daemons are started directly, detached). `start` and
# `stop` are idempotent and serialised between processes by a lock file.
#
# Layout (a generated slurm.conf carries the marker line below and is rewritten on every
# start; a slurm.conf without it is never overwritten unless CGFLOW_SLURM_FORCE_CONF=1):
#   /etc/slurm/slurm.conf                    configuration ($SLURM_CONF overrides)
#   /var/log/slurm/{slurmctld,slurmd}.log    logs ($CGFLOW_SLURM_LOG_DIR overrides)
#   /var/spool/slurm/{ctld,d}                state ($CGFLOW_SLURM_STATE_DIR overrides)
#   /run/slurm/{slurmctld,slurmd}.pid        pid files
#   /run/munge/, /etc/munge/munge.key        munged's socket, pid file and key
#
# CPUs: the node gets all CPUs that `slurmd -C` reports (2 here) and the select plugin
# counts single CPUs (select/cons_tres, CR_CPU, no socket/core/thread layout, so that two
# hyper-threads of one core can also go to two jobs). A job that asks for one CPU (the
# default) takes one, so two such jobs run side by side on a 2-CPU machine; a job that
# needs both (GROMACS with 2 threads) must ask for them (--cpus-per-task=2). Memory is not
# a consumable resource. Partition `debug` (the default): DefaultTime 1 h, MaxTime 2 days
# (CGFLOW_SLURM_DEFAULT_TIME, CGFLOW_SLURM_MAX_TIME override).
#
# No accounting daemon: `sacct` does not work; finished jobs stay visible to
# `scontrol show job` for MinJobAge = 300 s.
set -euo pipefail

SLURM_CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
LOG_DIR=${CGFLOW_SLURM_LOG_DIR:-/var/log/slurm}
STATE_DIR=${CGFLOW_SLURM_STATE_DIR:-/var/spool/slurm}
RUN_DIR=/run/slurm
DEFAULT_TIME=${CGFLOW_SLURM_DEFAULT_TIME:-01:00:00}
MAX_TIME=${CGFLOW_SLURM_MAX_TIME:-2-00:00:00}
START_TIMEOUT=${CGFLOW_SLURM_START_TIMEOUT:-60}
CHECK_TIMEOUT=${CGFLOW_SLURM_CHECK_TIMEOUT:-60}
LOCK_FILE=/run/cgflow-slurm.lock
MARKER="# Written by cgflow tools/slurm/slurm.sh (single-node test cluster)."
MUNGE_KEY=/etc/munge/munge.key
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
export SLURM_CONF

log() { echo "[slurm.sh] $(date +%T.%N | cut -c1-12) $*" >&2; }
die() { echo "[slurm.sh] error: $*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "'$1' must run as root (it starts system daemons)"
}

installed() {
    local c
    for c in slurmctld slurmd sbatch squeue sinfo scontrol scancel munged munge unmunge; do
        command -v "$c" >/dev/null 2>&1 || return 1
    done
}

need_installed() {
    installed || die "SLURM or munge is not installed: run '$0 install' first"
}

# Whether the process whose id is in pid file $1 is alive and runs command $2.
pid_running() {
    local pidfile=$1 name=$2 pid
    [ -s "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/comm" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]
}

pid_of() { cat "$1" 2>/dev/null || true; }

# Send SIGTERM to the daemon of pid file $1 (command $2) and wait up to $3 s, then SIGKILL.
stop_daemon() {
    local pidfile=$1 name=$2 wait_s=$3 pid i
    if ! pid_running "$pidfile" "$name"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(pid_of "$pidfile")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
        pid_running "$pidfile" "$name" || break
        sleep 0.1
    done
    if pid_running "$pidfile" "$name"; then
        log "$name (pid $pid) did not stop in ${wait_s} s: sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
}

# `scontrol ping` answers at once (sinfo retries for ~10 s when no controller is up).
sinfo_answers() {
    timeout 10 scontrol ping 2>/dev/null | grep -q "is UP" \
        && timeout 10 sinfo -h -o %T >/dev/null 2>&1
}

node_state() { timeout 10 sinfo -h -N -o %T 2>/dev/null | head -n 1; }

munge_works() { timeout 10 munge -n 2>/dev/null | timeout 10 unmunge >/dev/null 2>&1; }

with_lock() {
    exec 9>"$LOCK_FILE"
    if ! flock -w 120 9; then
        die "another slurm.sh start/stop holds $LOCK_FILE for more than 120 s"
    fi
}

cmd_install() {
    if installed; then
        log "SLURM and munge are installed ($(slurmctld -V 2>/dev/null || echo unknown version))"
        return 0
    fi
    need_root install
    log "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
    installed || die "apt-get install slurm-wlm munge did not provide all SLURM/munge commands"
    log "installed $(slurmctld -V)"
}

start_munge() {
    if pid_running "$MUNGE_PID" munged && munge_works; then
        return 0
    fi
    install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
    install -d -o munge -g munge -m 0711 /var/lib/munge
    install -d -o munge -g munge -m 0755 /run/munge
    if [ ! -s "$MUNGE_KEY" ]; then
        log "creating munge key $MUNGE_KEY"
        mungekey --create --keyfile "$MUNGE_KEY"
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    if pid_running "$MUNGE_PID" munged; then
        # running but not answering: restart it
        stop_daemon "$MUNGE_PID" munged 10
    fi
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    log "starting munged (as user munge)"
    runuser -u munge -- munged --pid-file "$MUNGE_PID" 9>&- \
        || die "munged did not start; see /var/log/munge/munged.log"
    local i
    for ((i = 0; i < 100; i++)); do
        munge_works && return 0
        sleep 0.1
    done
    die "munged does not answer (munge -n | unmunge); see /var/log/munge/munged.log"
}

# The node line: name, CPU count and memory from `slurmd -C`, reached at 127.0.0.1.
node_line() {
    local probe name cpus mem
    probe=$(slurmd -C 2>/dev/null | head -n 1) || true
    name=$(sed -n 's/.*NodeName=\([^ ]*\).*/\1/p' <<<"$probe")
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$probe")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$probe")
    if [ -z "$name" ] || [ -z "$cpus" ] || [ -z "$mem" ]; then
        die "could not read NodeName/CPUs/RealMemory from 'slurmd -C': $probe"
    fi
    # 95 % of the memory seen now, so that a slightly smaller reading at registration
    # does not drain the node for "Low RealMemory".
    mem=$((mem * 95 / 100))
    echo "NodeName=$name NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN"
}

write_conf() {
    if [ -f "$SLURM_CONF" ] && ! grep -qxF "$MARKER" "$SLURM_CONF" \
        && [ "${CGFLOW_SLURM_FORCE_CONF:-0}" != "1" ]; then
        die "$SLURM_CONF exists and was not written by this script; leaving it alone" \
            "(set CGFLOW_SLURM_FORCE_CONF=1 to replace it)"
    fi
    local node host
    node=$(node_line)
    host=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' <<<"$node")
    mkdir -p "$(dirname "$SLURM_CONF")"
    cat >"$SLURM_CONF.tmp" <<EOF
$MARKER
# Regenerated on every 'slurm.sh start'; edit the script, not this file.
ClusterName=cgflow
SlurmctldHost=$host(127.0.0.1)
# Daemons run as root (single-node test cluster started without systemd).
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups, no accounting, no MPI plugin, no mail.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
# Scheduling: single CPUs are the consumable resource (see the script header).
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# Refuse at submission a job that can never run here (too many CPUs, over MaxTime)
# instead of leaving it pending forever.
EnforcePartLimits=ALL
# Timers (seconds): quick kills on scancel/timeout, finished jobs visible for 5 min.
KillWait=5
MinJobAge=300
InactiveLimit=0
Waittime=0
SlurmctldTimeout=60
SlurmdTimeout=60
MessageTimeout=10
$node
PartitionName=debug Nodes=ALL Default=YES State=UP DefaultTime=$DEFAULT_TIME MaxTime=$MAX_TIME
EOF
    mv "$SLURM_CONF.tmp" "$SLURM_CONF"
    chmod 0644 "$SLURM_CONF"
}

wait_node_ready() {
    local deadline=$((SECONDS + START_TIMEOUT)) state="" resumed=0
    while ((SECONDS < deadline)); do
        state=$(node_state || true)
        case "$state" in
            *\*) ;; # not responding (yet)
            idle* | mixed* | allocated* | completing*) return 0 ;;
            down* | drain* | fail*)
                if [ "$resumed" -eq 0 ]; then
                    log "node is '$state': resuming it"
                    scontrol update NodeName=ALL State=RESUME >/dev/null 2>&1 || true
                    resumed=1
                fi
                ;;
        esac
        sleep 0.5
    done
    log "last node state: '${state:-none}'; tail of $LOG_DIR/slurmctld.log:"
    tail -n 20 "$LOG_DIR/slurmctld.log" >&2 2>/dev/null || true
    log "tail of $LOG_DIR/slurmd.log:"
    tail -n 20 "$LOG_DIR/slurmd.log" >&2 2>/dev/null || true
    die "the node did not become idle within ${START_TIMEOUT} s"
}

cmd_start() {
    need_root start
    need_installed
    with_lock
    if pid_running "$CTLD_PID" slurmctld && pid_running "$SLURMD_PID" slurmd && sinfo_answers; then
        wait_node_ready
        log "already running: node $(node_state)"
        return 0
    fi
    if sinfo_answers && ! pid_running "$CTLD_PID" slurmctld; then
        die "a SLURM controller not started by this script answers sinfo; leaving it alone"
    fi
    start_munge
    install -d -m 0755 "$LOG_DIR" "$STATE_DIR" "$STATE_DIR/ctld" "$STATE_DIR/d" "$RUN_DIR"
    if ! pid_running "$CTLD_PID" slurmctld; then
        write_conf
        log "starting slurmctld (log $LOG_DIR/slurmctld.log)"
        slurmctld 9>&- || die "slurmctld failed to start; see $LOG_DIR/slurmctld.log"
    fi
    local i
    for ((i = 0; i < START_TIMEOUT * 2; i++)); do
        sinfo_answers && break
        pid_running "$CTLD_PID" slurmctld || sleep 0.5
        sleep 0.5
    done
    sinfo_answers || {
        tail -n 20 "$LOG_DIR/slurmctld.log" >&2 2>/dev/null || true
        die "slurmctld does not answer sinfo within ${START_TIMEOUT} s"
    }
    if ! pid_running "$SLURMD_PID" slurmd; then
        log "starting slurmd (log $LOG_DIR/slurmd.log)"
        slurmd 9>&- || die "slurmd failed to start; see $LOG_DIR/slurmd.log"
    fi
    wait_node_ready
    log "running: node $(node_state), $(sinfo -h -o '%c CPUs, partition %P, max time %l')"
}

cmd_check() {
    need_installed
    sinfo_answers || die "SLURM does not answer sinfo: run '$0 start' first"
    local dir id state="" deadline
    dir=$(mktemp -d /tmp/slurm-check.XXXXXX)
    id=$(sbatch --parsable --job-name=slurm-check --chdir="$dir" --output="$dir/out.txt" \
        --time=00:01:00 --wrap hostname) || die "sbatch failed"
    id=${id%%;*}
    log "submitted job $id"
    deadline=$((SECONDS + CHECK_TIMEOUT))
    while ((SECONDS < deadline)); do
        state=$(scontrol show job "$id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
        case "$state" in
            COMPLETED) break ;;
            FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
                die "job $id ended $state" ;;
        esac
        sleep 0.5
    done
    if [ "$state" != COMPLETED ]; then
        scancel "$id" 2>/dev/null || true
        die "job $id is '$state' after ${CHECK_TIMEOUT} s (cancelled)"
    fi
    log "job $id COMPLETED, output: $(cat "$dir/out.txt" 2>/dev/null)"
    rm -rf "$dir"
}

cmd_stop() {
    need_root stop
    with_lock
    if installed && sinfo_answers; then
        local ids i
        ids=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
        if [ -n "${ids// /}" ]; then
            log "cancelling jobs: $ids"
            # shellcheck disable=SC2086
            scancel $ids 2>/dev/null || true
            for ((i = 0; i < 60; i++)); do
                [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
                sleep 0.5
            done
            [ -z "$(squeue -h -o %A 2>/dev/null)" ] \
                || log "warning: jobs still listed after 30 s: $(squeue -h -o '%A %T' | tr '\n' ' ')"
        fi
    fi
    stop_daemon "$SLURMD_PID" slurmd 20
    stop_daemon "$CTLD_PID" slurmctld 20
    stop_daemon "$MUNGE_PID" munged 10
    log "stopped"
}

cmd_status() {
    local ok=0 name pidfile
    for name in munged slurmctld slurmd; do
        case $name in
            munged) pidfile=$MUNGE_PID ;;
            slurmctld) pidfile=$CTLD_PID ;;
            slurmd) pidfile=$SLURMD_PID ;;
        esac
        if pid_running "$pidfile" "$name"; then
            echo "$name: running (pid $(pid_of "$pidfile"))"
        else
            echo "$name: not running"
            ok=3
        fi
    done
    if installed && sinfo_answers; then
        sinfo
        squeue
    else
        echo "sinfo: no answer"
        ok=3
    fi
    return $ok
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    check) cmd_check ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 {install|start|check|stop|status}" >&2
        exit 2
        ;;
esac
