#!/usr/bin/env bash
# setup-compute-instance.sh: install amlprobe on an Azure ML compute instance (or any Linux VM),
# run one check, and schedule the periodic check (systemd timer, else cron).
#
# Made for a compute instance's creation or startup script. Azure ML runs such a script as root,
# in the folder it was uploaded to, with CI_NAME, CI_WORKSPACE and CI_RESOURCE_GROUP set, and stops
# it after 15 minutes unless told otherwise ("The default value for a setup script timeout is 15
# minutes": learn.microsoft.com, "Customize the compute instance with a script",
# MicrosoftDocs/azure-ai-docs articles/machine-learning/how-to-customize-compute-instance.md).
# Worst case here: pip AMLPROBE_PIP_TIMEOUT (420 s) + the check AMLPROBE_DEADLINE (120 s) + 70 s of
# margin, about 10 minutes; a second run with nothing to install takes a second or two plus the check.
#
# A setup script that fails leaves the compute instance in a failed state, and a network health
# check must not be the reason a data scientist gets no compute. So by default every outcome is
# logged and the script exits 0: a critical verdict and even this script's own installation errors.
# --strict turns that off: a critical verdict exits 2 and an installation failure exits 1. Warning
# and unknown verdicts always exit 0.
#
# Files beside this script (upload the deploy/ folder):
#   amlprobe-run, amlprobe.service, amlprobe.timer, amlprobe.cron   required
#   amlprobe-*.whl   install this wheel (the newest if several; wheels/ is searched too)
#   wheels/          dependency wheels (pip wheel -w wheels .): pip then never contacts an index
#                    (--no-index --find-links wheels/), for VNets without access to PyPI
#   amlprobe.toml    installed as /etc/amlprobe/amlprobe.toml, world-readable: no secrets in it
# Without a wheel, amlprobe comes from the package index (==AMLPROBE_VERSION when set). The
# installed version is kept when it equals the wanted one: a second run reinstalls nothing and
# rewrites no file whose content is unchanged.
#
# Arguments: --strict (see above), and AMLPROBE_NAME=value settings, which count as environment
# variables (a setup script gets arguments from the studio, not an environment):
#   setup-compute-instance.sh --strict AMLPROBE_DEADLINE=90 "AMLPROBE_CHECK_ARGS=--proxy http://10.0.0.4:3128"
# Any other argument is a mistake: the script prints this help on stderr and exits 2, before it
# changes anything.
#
# A second run keeps the settings the first one was given: values already in
# /etc/amlprobe/amlprobe.env stay unless this run sets them again (an empty value removes one:
# AMLPROBE_CHECK_ARGS=).
#
# --uninstall removes everything this script installed: the timer and service units or the cron
# entry, the venv, /etc/amlprobe, the state directory (reports, history, metrics), amlprobe.prom in
# a textfile directory elsewhere, and the service user. It installs and checks nothing.
#
# Environment:
#   AMLPROBE_CHECK_ARGS   extra `amlprobe check` arguments, whitespace-separated, for this run and
#                         every periodic one (e.g. "--proxy http://10.0.0.4:3128")
#   AMLPROBE_DEADLINE     the check's deadline in seconds (default 120)
#   AMLPROBE_<FIELD>      workspace inputs (AMLPROBE_REGION, AMLPROBE_WORKSPACE_ID, ...)
#   These, CI_NAME/CI_WORKSPACE/CI_RESOURCE_GROUP and HTTP(S)_PROXY/NO_PROXY are kept in
#   /etc/amlprobe/amlprobe.env (mode 0640, group amlprobe) for the periodic runs.
#   AMLPROBE_VERSION      version to install from the index (default: keep what is installed)
#   AMLPROBE_PIP_ARGS     extra pip arguments, e.g. "--index-url https://pypi.example/simple"
#   AMLPROBE_PIP_TIMEOUT  seconds pip may take in all (default 420)
#   AMLPROBE_PYTHON       the Python 3.10+ for the venv (default: the first of python3.13 ..
#                         python3.10, python3, /anaconda/envs/azureml_py310_sdkv2/bin/python that
#                         has venv and ensurepip and is the version wheels/ was built for, else
#                         any 3.10+)
#   AMLPROBE_PREFIX       install directory, a venv (default /opt/amlprobe)
#   AMLPROBE_STATE_DIR    report, history and metrics (default /var/lib/amlprobe)
#   AMLPROBE_TEXTFILE_DIR where amlprobe.prom goes (default $AMLPROBE_STATE_DIR/textfile)
#   AMLPROBE_SCHEDULER    auto (systemd when it runs, else cron), systemd, cron or none
#   AMLPROBE_ROOT         a staging root put before every system path (tests): no user is created,
#                         the check runs as the caller, and systemd is only told via --root
set -Eeuo pipefail

log() { printf 'amlprobe-setup: %s\n' "$*"; }

usage() { sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

strict=0
uninstall=0
for arg in "$@"; do
  case $arg in
    --strict) strict=1 ;;
    --uninstall) uninstall=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    # The studio passes a setup script arguments, not environment: AMLPROBE_X=value works as either.
    AMLPROBE_*=*)
      if [[ ! ${arg%%=*} =~ ^AMLPROBE_[A-Z0-9_]+$ ]]; then
        usage >&2
        log "ERROR: argument '$arg' is not an AMLPROBE_NAME=value setting (NAME: A-Z, 0-9, _)" >&2
        exit 2
      fi
      export "${arg?}"
      ;;
    *)
      usage >&2
      log "ERROR: unknown argument '$arg' (known: --strict, --uninstall, --help, AMLPROBE_NAME=value)" >&2
      exit 2
      ;;
  esac
done

deliberate=0
scratch=
# shellcheck disable=SC2317 # called by the EXIT trap
on_exit() {
  local rc=$?
  if [[ -n $scratch ]]; then
    rm -rf "$scratch"
  fi
  ((rc != 0 && !deliberate)) || return 0
  log "ERROR: setup did not complete (exit $rc): amlprobe may be missing or outdated here"
  if ((strict)); then
    exit 1
  fi
  log "exiting 0 so that the compute is still created (--strict fails instead)"
  exit 0
}
trap on_exit EXIT
trap 'log "ERROR: line $LINENO: \`$BASH_COMMAND\` failed"' ERR
fail() {
  log "ERROR: $*"
  exit 1
}

readonly SERVICE_USER=amlprobe
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${AMLPROBE_ROOT:-}
[[ $root == / ]] && root=
config_dir=$root/etc/amlprobe
# What the periodic runs keep from the environment (amlprobe-run reads the same names).
readonly ENV_KEPT='^(AMLPROBE_[A-Z0-9_]+|CI_NAME|CI_WORKSPACE|CI_RESOURCE_GROUP|HTTPS?_PROXY|https?_proxy|NO_PROXY|no_proxy)$'
readonly ENV_SETUP_ONLY='^AMLPROBE_(ROOT|PREFIX|PYTHON|PIP_ARGS|PIP_TIMEOUT|SCHEDULER|VERSION|CONFIG_DIR|STATE_DIR|TEXTFILE_DIR)$'

# A re-run keeps the settings of the previous one: amlprobe.env is parsed (never sourced) and what
# this run's environment or arguments do not set is taken from it, as amlprobe-run does.
if [[ -f $config_dir/amlprobe.env ]]; then
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*(#|$) || $line != *=* ]] && continue
    key=${line%%=*}
    value=${line#*=}
    [[ $key =~ $ENV_KEPT ]] || continue
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
      value=${BASH_REMATCH[1]}
    fi
    [[ -n ${!key+set} ]] || export "$key=$value"
  done <"$config_dir/amlprobe.env"
fi
prefix=${AMLPROBE_PREFIX:-/opt/amlprobe}
state=${AMLPROBE_STATE_DIR:-/var/lib/amlprobe}
textfile_dir=${AMLPROBE_TEXTFILE_DIR:-}
deadline=${AMLPROBE_DEADLINE:-120}
pip_timeout=${AMLPROBE_PIP_TIMEOUT:-420}
scheduler=${AMLPROBE_SCHEDULER:-auto}

# Paths end up in unit files and a cron line: plain characters only, so no quoting is ever needed.
for var in root prefix state textfile_dir; do
  value=${!var}
  [[ -z $value || $value =~ ^/[A-Za-z0-9._/-]*$ ]] || fail "$var '$value' must be an absolute path of letters, digits and ._-/"
done
[[ $deadline =~ ^[0-9]+$ && $deadline -gt 0 ]] || fail "AMLPROBE_DEADLINE '$deadline' must be a whole number of seconds"
[[ $pip_timeout =~ ^[0-9]+$ ]] || fail "AMLPROBE_PIP_TIMEOUT '$pip_timeout' must be a whole number of seconds"
[[ -n $root || $EUID -eq 0 ]] || fail "run me as root (Azure ML runs setup scripts as root)"
for f in amlprobe-run amlprobe.service amlprobe.timer amlprobe.cron; do
  [[ -r $here/$f ]] || fail "$here/$f is missing: upload the whole deploy/ folder"
done

venv=$root$prefix

# --- files: written only when their content differs -------------------------------------------

# Content is compared in a scratch directory elsewhere: even a temporary file beside DEST would
# touch its directory, and a second run must leave every mtime as it was.
scratch=$(mktemp -d)
changed=0
put() { # put DEST MODE < CONTENT; sets changed=1 when DEST was (re)written
  local dest=$1 mode=$2 tmp
  cat >"$scratch/new"
  if cmp -s "$scratch/new" "$dest"; then
    [[ $(stat -c %a "$dest") == "$mode" ]] || chmod "$mode" "$dest"
    return 0
  fi
  tmp=$(mktemp "$(dirname "$dest")/.$(basename "$dest").XXXXXX") # a leading dot: cron.d skips it
  cat "$scratch/new" >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
  changed=1
  log "wrote ${dest#"$root"}"
}

render() { # render TEMPLATE: deploy/ files carry the default paths; put this machine's in
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == StateDirectory=amlprobe ]]; then
      if [[ $state =~ ^/var/lib/[A-Za-z0-9._-]+$ ]]; then
        printf 'StateDirectory=%s\n' "${state#/var/lib/}"
      else
        printf 'ReadWritePaths=%s\n' "$state"
      fi
      if [[ -n $textfile_dir && $textfile_dir != "$state"/* ]]; then
        printf 'ReadWritePaths=-%s\n' "$textfile_dir"
      fi
    else
      printf '%s\n' "${line//\/opt\/amlprobe/$prefix}"
    fi
  done <"$1"
}

# --- --uninstall: remove what this script installed, and nothing else ----------------------------

gone() { log "removed ${1#"$root"}"; }
remove_file() { # remove_file PATH...: each one that exists
  local f
  for f in "$@"; do
    if [[ -e $f || -L $f ]]; then
      rm -f "$f"
      gone "$f"
    fi
  done
}
remove_dir_if_empty() { # what is left in DIR is not ours: say so and keep it
  local dir=$1 left
  [[ -d $dir ]] || return 0
  left=$(find "$dir" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null)
  if [[ -z $left ]]; then
    rmdir "$dir"
    gone "$dir"
  else
    log "kept ${dir#"$root"}: it holds files amlprobe did not write: ${left% }"
  fi
}
# Files amlprobe and amlprobe-run write in a state or textfile directory (temporary ones included).
state_files() { # state_files DIR
  local dir=$1
  printf '%s\n' "$dir/report.json" "$dir/history.jsonl" "$dir/status" "$dir/.lock" \
    "$dir/.status.tmp" "$dir/.history.tmp" "$dir"/.report.json.*.tmp "$dir"/.history.jsonl.*.tmp \
    "$dir/amlprobe.prom" "$dir"/.amlprobe.prom.*.tmp
}

if ((uninstall)); then
  units=$root/etc/systemd/system
  if [[ -e $units/amlprobe.timer || -e $units/amlprobe.service ]]; then
    if [[ -n $root ]]; then
      systemctl --root="$root" --quiet disable amlprobe.timer 2>/dev/null || true
    elif [[ -d /run/systemd/system ]]; then
      systemctl --quiet disable --now amlprobe.timer 2>/dev/null || true
      systemctl --quiet stop amlprobe.service 2>/dev/null || true
    fi
    remove_file "$units/timers.target.wants/amlprobe.timer" "$units/amlprobe.timer" "$units/amlprobe.service"
    if [[ -z $root && -d /run/systemd/system ]]; then
      systemctl daemon-reload
    fi
  fi
  remove_file "$root/etc/cron.d/amlprobe"
  # The venv only when it is recognisably amlprobe's: never rm -rf a directory someone pointed at.
  if [[ -f $venv/pyvenv.cfg && -e $venv/bin/amlprobe ]]; then
    rm -rf "$venv"
    gone "$venv"
  elif [[ -e $venv ]]; then
    log "kept $prefix: it is not an amlprobe venv (no pyvenv.cfg or bin/amlprobe)"
  fi
  remove_file "$config_dir/amlprobe.env" "$config_dir/amlprobe.toml"
  remove_dir_if_empty "$config_dir"
  for dir in ${textfile_dir:+"$root$textfile_dir"} "$root$state/textfile" "$root$state"; do
    mapfile -t files < <(state_files "$dir")
    remove_file "${files[@]}"
    remove_dir_if_empty "$dir"
  done
  if [[ -z $root ]] && entry=$(getent passwd "$SERVICE_USER"); then
    IFS=: read -r _ _ uid _ _ home _ <<<"$entry"
    # Only the system user this script creates (its home is the state directory).
    if ((uid < 1000)) && [[ $home == "$state" ]]; then
      userdel "$SERVICE_USER"
      log "removed the system user $SERVICE_USER"
    else
      log "kept the user $SERVICE_USER: not the system user this script creates (uid $uid, home $home)"
    fi
  fi
  log "amlprobe uninstalled"
  exit 0
fi

# --- the service user -----------------------------------------------------------------------------

run_as=()
if [[ -z $root ]]; then
  if ! getent passwd "$SERVICE_USER" >/dev/null; then
    useradd --system --user-group --home-dir "$state" --no-create-home \
      --shell "$(command -v nologin || echo /usr/sbin/nologin)" "$SERVICE_USER"
    log "created the system user $SERVICE_USER"
  fi
  run_as=(setpriv "--reuid=$SERVICE_USER" "--regid=$SERVICE_USER" --init-groups --)
fi

# The periodic check runs as the service user: an interpreter it cannot execute (a Python under
# /root, e.g. pyenv's) gives a venv that only root can run.
runnable_by_service_user() { # PYTHON
  ((${#run_as[@]})) || return 0
  "${run_as[@]}" "$1" -c 'import sys' >/dev/null 2>&1
}

# --- amlprobe in its own venv -------------------------------------------------------------------

wheels_python() { # "3.10" when wheels/ holds CPython 3.10 builds (aiohttp_...-cp310-cp310-...whl)
  local w tag
  for w in "$here"/wheels/*-cp3*-cp3*.whl; do
    [[ -f $w ]] || continue
    tag=${w##*/}
    tag=$(grep -o -- '-cp3[0-9]*-' <<<"$tag" | head -n 1)
    tag=${tag//-/}
    printf '3.%s\n' "${tag#cp3}"
    return 0
  done
}

find_python() {
  local candidates=(python3.13 python3.12 python3.11 python3.10 python3 /anaconda/envs/azureml_py310_sdkv2/bin/python)
  [[ -n ${AMLPROBE_PYTHON:-} ]] && candidates=("$AMLPROBE_PYTHON")
  # Compiled dependency wheels install only into the Python they were built for: that one first.
  local want c check
  want=$(wheels_python || true)
  for check in ${want:+"== (${want/./, })"} ">= (3, 10)"; do
    for c in "${candidates[@]}"; do
      command -v "$c" >/dev/null 2>&1 || continue
      # Ubuntu's python3 lacks ensurepip unless python3-venv is installed; venv then fails half-way.
      if "$c" -c "import sys, venv, ensurepip; sys.exit(not sys.version_info[:2] $check)" 2>/dev/null; then
        command -v "$c"
        return 0
      fi
    done
  done
  return 1
}

installed_version() {
  local d
  for d in "$venv"/lib/python3*/site-packages/amlprobe-*.dist-info; do
    [[ -d $d ]] || continue
    d=${d##*/amlprobe-}
    printf '%s\n' "${d%.dist-info}"
    return 0
  done
}

wheel=$(
  for w in "$here"/amlprobe-*.whl "$here"/wheels/amlprobe-*.whl; do
    [[ -f $w ]] || continue
    v=${w##*/amlprobe-}
    printf '%s\t%s\n' "${v%%-*}" "$w"
  done | sort -V -k1,1 | tail -n 1 | cut -f2
)
wanted=${AMLPROBE_VERSION:-}
if [[ -n $wheel ]]; then
  wanted=${wheel##*/amlprobe-}
  wanted=${wanted%%-*}
fi

if [[ ! -x $venv/bin/python ]]; then
  python=$(find_python) || fail "no Python 3.10+ with venv and ensurepip found (install python3-venv, or set AMLPROBE_PYTHON)"
  runnable_by_service_user "$python" ||
    fail "the service user $SERVICE_USER cannot execute $python (is it under a private directory such as /root?): set AMLPROBE_PYTHON to a Python it can run, e.g. /usr/bin/python3"
  log "creating the venv $prefix with $python"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv --clear "$venv"
elif ! runnable_by_service_user "$venv/bin/python"; then
  fail "the service user $SERVICE_USER cannot execute $prefix/bin/python: remove it (--uninstall) and set AMLPROBE_PYTHON to a Python it can run"
fi

have=$(installed_version || true)
if [[ -z $have || (-n $wanted && $have != "$wanted") ]]; then
  # Compiled wheels install only into the Python they were built for: say so before pip does, in
  # words an admin can act on.
  built_for=$(wheels_python || true)
  venv_python=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [[ -n $built_for && $built_for != "$venv_python" ]]; then
    fail "the wheels in $here/wheels are built for Python $built_for, but $prefix runs Python $venv_python: build them with Python $venv_python (python$venv_python -m pip wheel -w deploy/wheels .), or set AMLPROBE_PYTHON to a Python $built_for${have:+ and remove $prefix first (--uninstall)}"
  fi
  pip_args=(--disable-pip-version-check --no-input --quiet --timeout 15 --retries 1)
  if [[ -d $here/wheels ]]; then
    pip_args+=(--no-index --find-links "$here/wheels")
  fi
  [[ -n $wheel ]] && pip_args+=(--find-links "$(dirname "$wheel")")
  read -ra user_pip_args <<<"${AMLPROBE_PIP_ARGS:-}"
  target=${wheel:-amlprobe${wanted:+==$wanted}}
  log "installing amlprobe ${wanted:-(latest)} into $prefix from ${wheel:-the package index}${have:+ (replacing $have)}"
  timeout "$pip_timeout" "$venv/bin/python" -m pip install "${pip_args[@]}" "${user_pip_args[@]}" "$target" ||
    fail "pip could not install $target (no index reachable? put the dependency wheels in $here/wheels)"
  have=$(installed_version || true)
fi
"$venv/bin/amlprobe" --version >/dev/null || fail "$prefix/bin/amlprobe does not run"
put "$venv/bin/amlprobe-run" 755 <"$here/amlprobe-run"

# --- the service user, state and configuration ----------------------------------------------------

for dir in "$root$state" ${textfile_dir:+"$root$textfile_dir"}; do
  [[ -d $dir ]] || mkdir -p "$dir"
  [[ $(stat -c %a "$dir") == 755 ]] || chmod 755 "$dir"
  if [[ -z $root && $(stat -c %U "$dir") != "$SERVICE_USER" ]]; then
    chown -R "$SERVICE_USER:$SERVICE_USER" "$dir"
  fi
done

[[ -d $config_dir ]] || mkdir -p "$config_dir"
if [[ -f $here/amlprobe.toml ]]; then
  put "$config_dir/amlprobe.toml" 644 <"$here/amlprobe.toml"
fi

env_file() { # what the periodic runs need from this environment
  local name value
  echo "# Written by setup-compute-instance.sh for amlprobe-run, which parses (never sources) it."
  echo "# Group-readable only: proxy URLs may carry credentials."
  if [[ $state != /var/lib/amlprobe ]]; then
    echo "AMLPROBE_STATE_DIR=$state"
  fi
  if [[ -n $textfile_dir ]]; then
    echo "AMLPROBE_TEXTFILE_DIR=$textfile_dir"
  fi
  while IFS= read -r name; do
    if [[ $name =~ $ENV_KEPT && ! $name =~ $ENV_SETUP_ONLY ]]; then
      value=${!name}
      if [[ -n $value && $value != *$'\n'* ]]; then
        printf '%s=%s\n' "$name" "$value"
      fi
    fi
  done < <(compgen -e | LC_ALL=C sort)
}
put "$config_dir/amlprobe.env" 640 < <(env_file)
if [[ -z $root && $(stat -c %G "$config_dir/amlprobe.env") != "$SERVICE_USER" ]]; then
  chgrp "$SERVICE_USER" "$config_dir/amlprobe.env"
fi

# --- the periodic check ---------------------------------------------------------------------------

if [[ $scheduler == auto ]]; then
  scheduler=cron
  [[ -d $root/run/systemd/system ]] && scheduler=systemd
fi
units=$root/etc/systemd/system
case $scheduler in
  systemd)
    mkdir -p "$units"
    changed=0
    put "$units/amlprobe.service" 644 < <(render "$here/amlprobe.service")
    put "$units/amlprobe.timer" 644 < <(render "$here/amlprobe.timer")
    if [[ -e $root/etc/cron.d/amlprobe ]]; then
      rm -f "$root/etc/cron.d/amlprobe"
      log "removed /etc/cron.d/amlprobe: the systemd timer runs the check now"
    fi
    if [[ -n $root ]]; then
      [[ -L $units/timers.target.wants/amlprobe.timer ]] || systemctl --root="$root" --quiet enable amlprobe.timer
    else
      if ((changed)); then
        systemctl daemon-reload
      fi
      if ((changed)) || ! systemctl --quiet is-enabled amlprobe.timer; then
        systemctl --quiet enable amlprobe.timer
      fi
      if ((changed)) || ! systemctl --quiet is-active amlprobe.timer; then
        systemctl restart amlprobe.timer
        log "amlprobe.timer (re)started: a check every 15 minutes"
      fi
    fi
    ;;
  cron)
    [[ -d $root/etc/cron.d ]] || mkdir -p "$root/etc/cron.d"
    put "$root/etc/cron.d/amlprobe" 644 < <(render "$here/amlprobe.cron")
    if [[ -z $root ]]; then
      if [[ -d /run/systemd/system ]] && systemctl --quiet is-enabled amlprobe.timer 2>/dev/null; then
        systemctl --quiet disable --now amlprobe.timer
        log "disabled amlprobe.timer: cron runs the check now"
      fi
      command -v cron >/dev/null || command -v crond >/dev/null ||
        log "WARNING: no cron daemon found: the periodic check will not run until one is installed"
    fi
    ;;
  none) ;;
  *) fail "AMLPROBE_SCHEDULER '$scheduler' must be auto, systemd, cron or none" ;;
esac

# --- one check now, as the periodic runs will do it ------------------------------------------------

rc=0
verdict=$(
  env AMLPROBE_CONFIG_DIR="$config_dir" AMLPROBE_STATE_DIR="$root$state" HOME="$root$state" \
    ${textfile_dir:+AMLPROBE_TEXTFILE_DIR="$root$textfile_dir"} AMLPROBE_DEADLINE="$deadline" \
    "${run_as[@]}" "$venv/bin/amlprobe-run"
) || rc=$?
[[ -n $verdict ]] || fail "the check did not run (exit $rc)"
printf '%s\n' "$verdict"
log "amlprobe ${have:-?} ready (${scheduler}); finished in ${SECONDS} s"
if ((strict && rc == 2)); then
  deliberate=1
  exit 2
fi
exit 0
