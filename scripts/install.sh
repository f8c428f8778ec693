#!/usr/bin/env bash
# Install hajimi on a Linux server under systemd (docs/en/vps.md).
#
#   sudo scripts/install.sh [--binary PATH]     install or update
#   sudo scripts/install.sh --uninstall         remove binary and unit, keep config and data
#   sudo scripts/install.sh --uninstall --purge also remove config, data and the hajimi user
#
# Files: /usr/local/bin/hajimi, /etc/hajimi/hajimi.env (the settings; written
# once, never overwritten), /etc/systemd/system/hajimi.service; data in
# /var/lib/hajimi (made by systemd's StateDirectory=). A file is only
# rewritten when its content differs, so running it again with the same
# binary changes nothing.
#
# DESTDIR=/some/dir prefixes every path written and skips everything that
# touches the running system (user creation, systemctl): for packaging and
# tests.
set -euo pipefail

readonly BIN_PATH=/usr/local/bin/hajimi
readonly CONFIG_DIR=/etc/hajimi
readonly CONFIG_FILE=/etc/hajimi/hajimi.env
readonly UNIT_FILE=/etc/systemd/system/hajimi.service
readonly STATE_DIR=/var/lib/hajimi
readonly SERVICE_USER=hajimi

DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}

usage() {
    cat <<'EOF'
Usage: install.sh [--binary PATH] [--uninstall] [--purge] [--help]

Installs hajimi as a systemd service:
  /usr/local/bin/hajimi                 the binary (replaced when it differs)
  /etc/hajimi/hajimi.env                settings (KEY=value), written only if missing
  /etc/systemd/system/hajimi.service    the unit (replaced when it differs)
  /var/lib/hajimi                       data (created by systemd)

Options:
  --binary PATH   the hajimi binary to install; default: ./hajimi, else
                  target/x86_64-unknown-linux-musl/release/hajimi, else
                  target/release/hajimi (relative to the current directory)
  --uninstall     stop and disable the service, remove the binary and the
                  unit; keep /etc/hajimi and /var/lib/hajimi
  --purge         with --uninstall: also remove /etc/hajimi, /var/lib/hajimi,
                  drop-ins in /etc/systemd/system/hajimi.service.d and the
                  hajimi user
  -h, --help      this text

Environment:
  DESTDIR         prefix for every path written (default: empty, the real
                  system). With DESTDIR set, no user is created and systemctl
                  is not run.
EOF
}

die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

say() {
    printf '%s\n' "$*"
}

binary=""
uninstall=false
purge=false
while (($# > 0)); do
    case "$1" in
        --binary)
            (($# >= 2)) || die "--binary needs a path"
            binary=$2
            shift 2
            ;;
        --binary=*)
            binary=${1#--binary=}
            shift
            ;;
        --uninstall)
            uninstall=true
            shift
            ;;
        --purge)
            purge=true
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            die "unknown argument: $1"
            ;;
    esac
done

if $purge && ! $uninstall; then
    die "--purge only goes with --uninstall"
fi
if $uninstall && [[ -n $binary ]]; then
    die "--binary does not go with --uninstall"
fi

# The real system needs root and systemd; under DESTDIR nothing of the
# running system is touched.
live=true
if [[ -n $DESTDIR ]]; then
    live=false
    mkdir -p -- "$DESTDIR"
    DESTDIR=$(cd -- "$DESTDIR" && pwd)
else
    [[ $(id -u) -eq 0 ]] || die "must run as root (sudo $0 …), or set DESTDIR to install into a directory"
    command -v systemctl >/dev/null 2>&1 || die "systemctl not found: this script installs a systemd service"
fi

changed=()

note_change() {
    changed+=("$1")
    say "  $1"
}

# ---------------------------------------------------------------- uninstall

if $uninstall; then
    if $live; then
        if [[ -e $UNIT_FILE ]]; then
            systemctl disable --now hajimi.service || true
            say "stopped and disabled hajimi.service"
        fi
    else
        say "DESTDIR=$DESTDIR: not stopping or disabling the service (no systemctl)"
    fi
    for path in "$BIN_PATH" "$UNIT_FILE"; do
        if [[ -e $DESTDIR$path || -L $DESTDIR$path ]]; then
            rm -f -- "$DESTDIR$path"
            say "removed $DESTDIR$path"
        fi
    done
    if $live; then
        systemctl daemon-reload
        systemctl reset-failed hajimi.service >/dev/null 2>&1 || true
    fi
    if $purge; then
        # Drop-ins made with `systemctl edit hajimi` go too.
        for dir in "$CONFIG_DIR" "$STATE_DIR" "$UNIT_FILE.d"; do
            target=$DESTDIR$dir # never "/": dir is one of the constants above
            if [[ -e $target ]]; then
                rm -rf -- "$target"
                say "removed $target"
            fi
        done
        if $live; then
            if id -u "$SERVICE_USER" >/dev/null 2>&1; then
                userdel "$SERVICE_USER"
                say "removed user $SERVICE_USER"
            fi
            if getent group "$SERVICE_USER" >/dev/null 2>&1; then
                groupdel "$SERVICE_USER" 2>/dev/null || true
            fi
        fi
    else
        for dir in "$CONFIG_DIR" "$STATE_DIR"; do
            if [[ -e $DESTDIR$dir ]]; then
                say "kept $DESTDIR$dir (remove it with --uninstall --purge)"
            fi
        done
        if $live && id -u "$SERVICE_USER" >/dev/null 2>&1; then
            say "kept user $SERVICE_USER (removed with --uninstall --purge)"
        fi
    fi
    say "hajimi uninstalled"
    exit 0
fi

# ---------------------------------------------------------------- the binary

if [[ -z $binary ]]; then
    for candidate in ./hajimi target/x86_64-unknown-linux-musl/release/hajimi target/release/hajimi; do
        if [[ -f $candidate ]]; then
            binary=$candidate
            break
        fi
    done
    [[ -n $binary ]] || die "no hajimi binary found (looked for ./hajimi, target/x86_64-unknown-linux-musl/release/hajimi, target/release/hajimi); build one with 'make static' or pass --binary PATH"
fi
# A bare name would be looked up in PATH when run.
[[ $binary == */* ]] || binary=./$binary
[[ -e $binary ]] || die "binary $binary does not exist"
[[ -f $binary ]] || die "binary $binary is not a regular file"
[[ -x $binary ]] || die "binary $binary is not executable (chmod +x it?)"
if ! version=$("$binary" --version 2>&1); then
    die "'$binary --version' failed (wrong architecture, or not hajimi?): $version"
fi
case "$version" in
    hajimi*) ;;
    *) die "'$binary --version' printed '$version', not hajimi's version" ;;
esac

# ---------------------------------------------------------------- file helpers

# install_file SOURCE DEST MODE: copy SOURCE to DEST (atomically, through a
# temporary file in DEST's directory) when the contents differ; fix the mode
# otherwise. Returns 0 when DEST was written, 1 when it was already right.
install_file() {
    local source=$1 dest=$2 mode=$3 tmp
    if [[ -f $dest ]] && cmp -s -- "$source" "$dest"; then
        if [[ $(stat -c %a -- "$dest") != "${mode#0}" ]]; then
            chmod -- "$mode" "$dest"
        fi
        return 1
    fi
    mkdir -p -- "$(dirname -- "$dest")"
    tmp=$(mktemp "$dest.tmp.XXXXXX")
    cp -- "$source" "$tmp"
    chmod -- "$mode" "$tmp"
    mv -f -- "$tmp" "$dest"
    return 0
}

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

say "installing $version from $binary${DESTDIR:+ into $DESTDIR}"

# ---------------------------------------------------------------- user

if $live; then
    if ! getent group "$SERVICE_USER" >/dev/null 2>&1; then
        groupadd --system "$SERVICE_USER"
        note_change "created group $SERVICE_USER"
    fi
    if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir "$STATE_DIR" --gid "$SERVICE_USER" \
            --shell /usr/sbin/nologin --comment "hajimi gateway" "$SERVICE_USER"
        note_change "created user $SERVICE_USER"
    fi
fi

# ---------------------------------------------------------------- binary

binary_changed=false
if install_file "$binary" "$DESTDIR$BIN_PATH" 0755; then
    binary_changed=true
    note_change "installed $DESTDIR$BIN_PATH"
fi

# ---------------------------------------------------------------- config

first_config=false
if [[ ! -e $DESTDIR$CONFIG_FILE ]]; then
    first_config=true
    password=$(head -c 18 /dev/urandom | base64)
    cat >"$work/hajimi.env" <<EOF
# hajimi settings, read by systemd (EnvironmentFile= in hajimi.service).
# One KEY=value per line; lines starting with # are comments. Quote a value
# with single quotes if it contains spaces or special characters.
# Every setting (its default, meaning and when a change applies) is in
# docs/en/settings.md (中文: docs/zh/settings.md), in the release archive
# and in the repository; only a few are listed below.
# After editing: sudo systemctl restart hajimi
#
# install.sh wrote this file once and never overwrites it.

# The key clients (SillyTavern, SDKs) send as their API key. Generated at
# install time; change it if you like, and keep it secret. It never opens
# the dashboard: that has a password of its own (WEB_PASSWORD below).
PASSWORD=$password

# Your Gemini (AI Studio) API keys, separated by commas. Keys can also be
# added in the dashboard.
GEMINI_API_KEYS=

# Listen address and port. Behind a reverse proxy on this machine, use
# HOST=127.0.0.1 so that only the proxy can reach hajimi.
# A port below 1024 needs CAP_NET_BIND_SERVICE in hajimi.service.
HOST=0.0.0.0
PORT=7860

# Where the SQLite database (hajimi.db) lives; systemd creates this directory
# (StateDirectory=hajimi). The service can write nowhere else.
STORAGE_DIR=$STATE_DIR

# ---- optional settings (remove the leading # to use one) ----

# Dashboard password, separate from PASSWORD. Unset (or 123): at every
# start hajimi prints a one-time setup code on stderr, read it with
#   journalctl -u hajimi | grep 'dashboard setup code'
# and the first login with that code sets the dashboard password. A password
# set in the dashboard is kept in $STATE_DIR and wins over WEB_PASSWORD.
#WEB_PASSWORD=

# Serve the dashboard under /<name>/ instead of /.
#DASHBOARD_URL=admin

# Answer stream:true requests with keep-alives while a non-streaming call
# runs (true), or forward Google's stream as it arrives (false).
#FAKE_STREAMING=true

# Parallel upstream calls per round, and upstream attempts per request.
#CONCURRENT_REQUESTS=1
#MAX_RETRY_NUM=15

# Offer the -search model variants (Google Search grounding).
#SEARCH_MODE=false

# Vertex AI: send /v1/* to Vertex. Service-account JSON must be one line
# here: paste the base64 of the file (base64 -w0 key.json), or drop *.json
# key files into $STATE_DIR/credentials/ instead.
#ENABLE_VERTEX=false
#GOOGLE_CREDENTIALS_JSON=
#VERTEX_EXPRESS_API_KEY=

# Reach Google through a proxy: http://[user:pass@]host:port or socks5://host:port
#PROXY_URL=

# Behind nginx/Caddy on this machine: take the client address from
# X-Forwarded-For, set by the proxies listed only. Leave both unset when
# clients connect to hajimi directly.
#TRUSTED_PROXY_HEADER=x-forwarded-for
#TRUSTED_PROXIES=127.0.0.1,::1

# Log filter (error, warn, info, debug).
#RUST_LOG=info
EOF
    mkdir -p -- "$DESTDIR$CONFIG_DIR"
    chmod 0750 -- "$DESTDIR$CONFIG_DIR"
    install_file "$work/hajimi.env" "$DESTDIR$CONFIG_FILE" 0640 || true
    if $live; then
        chown root:"$SERVICE_USER" -- "$DESTDIR$CONFIG_DIR" "$DESTDIR$CONFIG_FILE"
    fi
    note_change "wrote $DESTDIR$CONFIG_FILE (with a random PASSWORD)"
fi

# ---------------------------------------------------------------- unit

cat >"$work/hajimi.service" <<'EOF'
# Installed by hajimi's scripts/install.sh; replaced when the script's copy
# differs. For local changes use a drop-in: systemctl edit hajimi
[Unit]
Description=hajimi - OpenAI-compatible gateway to Google Gemini
Documentation=file:/etc/hajimi/hajimi.env
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=hajimi
Group=hajimi
EnvironmentFile=/etc/hajimi/hajimi.env
ExecStart=/usr/local/bin/hajimi
# /var/lib/hajimi, owned by hajimi; STORAGE_DIR points here.
StateDirectory=hajimi
StateDirectoryMode=0700
Restart=on-failure
RestartSec=2
# Exit status 2 is a configuration error (a malformed setting in
# /etc/hajimi/hajimi.env, a bad argument): restarting cannot fix it, so the
# unit stays failed and says why in journalctl -u hajimi.
RestartPreventExitStatus=2
# After SIGTERM running answers get SHUTDOWN_TIMEOUT (30 s by default) to
# finish, then hajimi saves its state: stop waits longer than that before
# SIGKILL. Raising SHUTDOWN_TIMEOUT? Raise this too (systemctl edit hajimi).
TimeoutStopSec=45
KillSignal=SIGTERM
# One descriptor per client connection (and one per upstream call): room
# for many at once.
LimitNOFILE=65536

# Hardening
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
SystemCallArchitectures=native
# No capabilities. To listen on a PORT below 1024, set both of these to
# CAP_NET_BIND_SERVICE (in a drop-in: systemctl edit hajimi).
CapabilityBoundingSet=
AmbientCapabilities=
UMask=0077

[Install]
WantedBy=multi-user.target
EOF

unit_existed=false
[[ -e $DESTDIR$UNIT_FILE ]] && unit_existed=true
unit_changed=false
if install_file "$work/hajimi.service" "$DESTDIR$UNIT_FILE" 0644; then
    unit_changed=true
    note_change "installed $DESTDIR$UNIT_FILE"
fi

# ---------------------------------------------------------------- systemd

if $live; then
    if $unit_changed; then
        systemctl daemon-reload
    fi
    if ! $unit_existed; then
        systemctl enable --now hajimi.service
        note_change "enabled and started hajimi.service"
    elif $binary_changed || $unit_changed; then
        systemctl restart hajimi.service
        note_change "restarted hajimi.service"
    fi
else
    say "DESTDIR=$DESTDIR: no user created, systemctl not run"
fi

if ((${#changed[@]} == 0)); then
    say "nothing changed"
fi

# ---------------------------------------------------------------- where things are

setting() {
    # The value of an uncommented KEY= line in the config file (last one wins).
    sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$DESTDIR$CONFIG_FILE" 2>/dev/null |
        tail -n 1 | sed "s/^['\"]//; s/['\"][[:space:]]*\$//"
}

port=$(setting PORT)
port=${port:-7860}
dashboard=$(setting DASHBOARD_URL)
dashboard=${dashboard#/}
dashboard=${dashboard%/}
address=$(hostname -I 2>/dev/null | awk '{print $1}') || true
address=${address:-your-server}

say ""
say "config:    $DESTDIR$CONFIG_FILE (then: systemctl restart hajimi)"
say "data:      $DESTDIR$STATE_DIR"
say "logs:      journalctl -u hajimi -f"
say "status:    systemctl status hajimi"
say "dashboard: http://$address:$port/${dashboard:+$dashboard/}"
say "API:       http://$address:$port/v1 (API key: PASSWORD from the config)"
web_password=$(setting WEB_PASSWORD)
if [[ -z $web_password || $web_password == 123 ]]; then
    # No dashboard password configured: each start prints a setup code.
    say "login:     no WEB_PASSWORD: until a dashboard password is set, log in with the setup code"
    say "           printed at each start: journalctl -u hajimi | grep 'dashboard setup code'"
else
    say "login:     dashboard password: WEB_PASSWORD from the config (not PASSWORD)"
fi
if $first_config; then
    say ""
    say "Set GEMINI_API_KEYS in $CONFIG_FILE (or add keys in the dashboard),"
    say "then: systemctl restart hajimi"
fi
