#!/usr/bin/env bash
# Tests scripts/install.sh in a throwaway DESTDIR (never the real system):
#
#   bash tests/install/test.sh PATH_TO_HAJIMI_BINARY
#
# Installs, checks every file, its mode and content, re-runs to check that
# nothing changes (content and mtime) and that the operator's config is kept,
# verifies the unit with systemd-analyze when it is installed, updates to
# another binary, checks the refusals, then uninstalls (keeping config and
# data) and purges. The last line is "N passed, N failed"; exit 1 if any
# check failed.
set -uo pipefail

if (($# != 1)); then
    echo "usage: bash tests/install/test.sh PATH_TO_HAJIMI_BINARY" >&2
    exit 2
fi
if [[ ! -x $1 ]]; then
    echo "test.sh: $1 is not an executable file" >&2
    exit 2
fi
binary=$(cd -- "$(dirname -- "$1")" && pwd)/$(basename -- "$1")
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
install_sh=$repo/scripts/install.sh

source "$repo/scripts/checks.sh"

scratch=$(mktemp -d)
DESTDIR=$(mktemp -d)
trap 'rm -rf -- "$scratch" "$DESTDIR"' EXIT

# run_install [ARGS...]: the script with DESTDIR set; output in $out, status in $rc.
out=""
rc=0
run_install() {
    out=$(DESTDIR=$DESTDIR bash "$install_sh" "$@" 2>&1)
    rc=$?
}
snapshot() {
    find "$DESTDIR" -type f -printf '%p %T@\n' | sort
}
mode_of() {
    stat -c %a -- "$1" 2>/dev/null
}

bin_file=$DESTDIR/usr/local/bin/hajimi
config_file=$DESTDIR/etc/hajimi/hajimi.env
unit_file=$DESTDIR/etc/systemd/system/hajimi.service

echo "install.sh: $install_sh"
echo "binary:     $binary ($("$binary" --version 2>&1))"
echo "DESTDIR:    $DESTDIR"
echo

# ---------------------------------------------------------------- static checks

check "install.sh parses (bash -n)" bash -n "$install_sh"
if command -v shellcheck >/dev/null 2>&1; then
    if sc=$(shellcheck "$install_sh" "${BASH_SOURCE[0]}" 2>&1); then
        pass "shellcheck install.sh and test.sh"
    else
        fail "shellcheck install.sh and test.sh" "$sc"
    fi
else
    echo "skip  shellcheck not installed"
fi

# ---------------------------------------------------------------- arguments and refusals

out=$(bash "$install_sh" --help 2>&1)
rc=$?
check "--help exits 0 and prints the usage" test "$rc" -eq 0 -a -n "$(grep -e '^Usage: install.sh' <<<"$out")"

refuses() { # refuses DESCRIPTION EXPECTED_MESSAGE ARGS...
    local description=$1 message=$2 empty
    shift 2
    empty=$(mktemp -d)
    out=$(DESTDIR=$empty bash "$install_sh" "$@" 2>&1)
    rc=$?
    if [[ $rc -ne 0 ]] && grep -qi -e "$message" <<<"$out" && [[ -z $(find "$empty" -type f) ]]; then
        pass "$description"
    else
        fail "$description (status $rc, files: $(find "$empty" -type f | wc -l))" "$out"
    fi
    rm -rf -- "$empty"
}
refuses "refuses an unknown argument" "unknown argument" --frobnicate
refuses "refuses --purge without --uninstall" "only goes with --uninstall" --purge
refuses "refuses a missing binary" "does not exist" --binary "$scratch/no-such-binary"
printf '#!/bin/sh\necho hajimi 0\n' >"$scratch/not-executable"
chmod 0644 "$scratch/not-executable"
refuses "refuses a binary that is not executable" "not executable" --binary "$scratch/not-executable"
printf '#!/bin/sh\nexit 3\n' >"$scratch/broken"
chmod 0755 "$scratch/broken"
refuses "refuses a binary whose --version fails" "--version' failed" --binary "$scratch/broken"
printf '#!/bin/sh\necho something-else 1.0\n' >"$scratch/other"
chmod 0755 "$scratch/other"
refuses "refuses a binary that is not hajimi" "not hajimi" --binary "$scratch/other"
mkdir -p "$scratch/empty-cwd"
out=$(cd "$scratch/empty-cwd" && DESTDIR=$scratch/unused bash "$install_sh" 2>&1)
rc=$?
check "refuses when no default binary exists" test "$rc" -ne 0 -a -n "$(grep -e 'no hajimi binary found' <<<"$out")"

# The real system is never touched: the root check is only exercised as an
# unprivileged user (as root, through setpriv as nobody when available).
nonroot_out=""
nonroot_rc=0
if [[ $(id -u) -ne 0 ]]; then
    nonroot_out=$(env -u DESTDIR bash "$install_sh" --binary "$binary" 2>&1)
    nonroot_rc=$?
elif command -v setpriv >/dev/null 2>&1; then
    nonroot_out=$(cd / && env -u DESTDIR setpriv --reuid=65534 --regid=65534 --clear-groups \
        bash "$install_sh" --binary "$binary" 2>&1)
    nonroot_rc=$?
else
    nonroot_out=skip
fi
if [[ $nonroot_out == skip ]]; then
    echo "skip  root check (running as root and no setpriv)"
elif [[ $nonroot_rc -ne 0 ]] && grep -q "must run as root" <<<"$nonroot_out"; then
    pass "without DESTDIR a non-root user is refused"
else
    fail "without DESTDIR a non-root user is refused (status $nonroot_rc)" "$nonroot_out"
fi

# Default binary: ./hajimi in the working directory, else target/…/release/hajimi.
mkdir -p "$scratch/cwd1" "$scratch/cwd2/target/release"
cp "$binary" "$scratch/cwd1/hajimi"
out=$(cd "$scratch/cwd1" && DESTDIR=$scratch/d1 bash "$install_sh" 2>&1)
rc=$?
check "default --binary is ./hajimi" test "$rc" -eq 0 -a -x "$scratch/d1/usr/local/bin/hajimi"
cp "$binary" "$scratch/cwd2/target/release/hajimi"
out=$(cd "$scratch/cwd2" && DESTDIR=$scratch/d2 bash "$install_sh" 2>&1)
rc=$?
check "default --binary falls back to target/release/hajimi" test "$rc" -eq 0 -a -x "$scratch/d2/usr/local/bin/hajimi"
rm -rf -- "$scratch/d1" "$scratch/d2" "$scratch/cwd1" "$scratch/cwd2"

# ---------------------------------------------------------------- first install

run_install --binary "$binary"
if [[ $rc -eq 0 ]]; then pass "install into DESTDIR exits 0"; else fail "install into DESTDIR exits 0 (status $rc)" "$out"; fi
check "install says no user/systemctl under DESTDIR" grep -q "no user created, systemctl not run" <<<"$out"
check "install prints how to see the logs" grep -q "journalctl -u hajimi -f" <<<"$out"
check "install prints the dashboard URL" grep -q "dashboard: http://.*:7860/" <<<"$out"
check "install says where the dashboard setup code is (no WEB_PASSWORD)" \
    grep -qF "journalctl -u hajimi | grep 'dashboard setup code'" <<<"$out"

check "binary installed with mode 755" test "$(mode_of "$bin_file")" = 755
check "installed binary is the given one" cmp -s "$binary" "$bin_file"
check "installed binary runs (--version)" grep -q '^hajimi ' <<<"$("$bin_file" --version 2>&1)"
check "config written with mode 640" test "$(mode_of "$config_file")" = 640
check "config directory mode 750" test "$(mode_of "$DESTDIR/etc/hajimi")" = 750
check "unit written with mode 644" test "$(mode_of "$unit_file")" = 644
check "no /var/lib/hajimi made (systemd's StateDirectory does)" test ! -e "$DESTDIR/var/lib/hajimi"
leftovers=$(find "$DESTDIR" -type f ! -path "$bin_file" ! -path "$config_file" ! -path "$unit_file")
check "no other file written" test -z "$leftovers"

# ---------------------------------------------------------------- config content

password=$(sed -n 's/^PASSWORD=//p' "$config_file")
check "config sets a PASSWORD" test -n "$password"
check "PASSWORD is random, not the default 123 (24 base64 characters)" \
    grep -Eq '^[A-Za-z0-9+/]{24}$' <<<"$password"
for line in "GEMINI_API_KEYS=" "HOST=0.0.0.0" "PORT=7860" "STORAGE_DIR=/var/lib/hajimi"; do
    check "config has $line" grep -qx -e "$line" "$config_file"
done
for name in WEB_PASSWORD DASHBOARD_URL FAKE_STREAMING CONCURRENT_REQUESTS MAX_RETRY_NUM SEARCH_MODE \
    ENABLE_VERTEX GOOGLE_CREDENTIALS_JSON VERTEX_EXPRESS_API_KEY PROXY_URL TRUSTED_PROXY_HEADER \
    TRUSTED_PROXIES RUST_LOG; do
    check "config has a commented-out $name" grep -q "^#$name=" "$config_file"
done
check "config says to change the password" grep -qi "change it" "$config_file"
check "config points at docs/en/settings.md for every setting" grep -q "docs/en/settings.md" "$config_file"
check "config no longer calls PASSWORD the dashboard password" \
    test -z "$(grep -i "dashboard password until" "$config_file")"
check "config says how to read the dashboard setup code" \
    grep -qF "journalctl -u hajimi | grep 'dashboard setup code'" "$config_file"
bad_lines=$(grep -nEv '^(#.*|[A-Z][A-Z0-9_]*=.*|)$' "$config_file")
if [[ -z $bad_lines ]]; then pass "config: only comments, blank lines and KEY=value lines"; else fail "config: only comments, blank lines and KEY=value lines" "$bad_lines"; fi
# Every name the config sets or suggests is a setting hajimi reads.
known=$(sed -n '/^pub const SETTINGS/,/^];/s/^ *("\([A-Z0-9_]*\)".*/\1/p' "$repo/src/config.rs")
known="$known"$'\n'RUST_LOG
unknown=""
while read -r name; do
    grep -qx -e "$name" <<<"$known" || unknown+="$name "
done < <(sed -nE 's/^#?([A-Z][A-Z0-9_]*)=.*/\1/p' "$config_file")
if [[ -n $known && -z $unknown ]]; then pass "every name in the config is in SETTINGS (src/config.rs) or RUST_LOG"; else fail "every name in the config is in SETTINGS (src/config.rs) or RUST_LOG" "unknown: $unknown"; fi

# hajimi accepts the file's values as they stand (parsed as systemd would
# pass them: plain KEY=value, no quoting in the generated lines).
config_env=()
while IFS= read -r line; do config_env+=("$line"); done < <(grep -E '^[A-Z][A-Z0-9_]*=' "$config_file")
# Start a server with them, on a random local port with storage in the
# scratch directory, and wait for it to answer /health.
port=$(( (RANDOM % 20000) + 30000 ))
env -i PATH=/usr/bin:/bin "${config_env[@]}" PORT=$port HOST=127.0.0.1 STORAGE_DIR="$scratch/data" \
    VALIDATE_KEYS_ON_STARTUP=false "$binary" >"$scratch/server.log" 2>&1 &
server=$!
up=false
for _ in $(seq 1 100); do
    if "$binary" healthcheck --port "$port" >/dev/null 2>&1; then up=true; break; fi
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
if $up; then pass "hajimi starts with the generated config"; else fail "hajimi starts with the generated config" "$(tail -n 20 "$scratch/server.log")"; fi

# ---------------------------------------------------------------- unit content

for line in \
    "Description=*" "Documentation=*" "After=network-online.target" "Wants=network-online.target" \
    "Type=simple" "User=hajimi" "Group=hajimi" "EnvironmentFile=/etc/hajimi/hajimi.env" \
    "ExecStart=/usr/local/bin/hajimi" "StateDirectory=hajimi" "StateDirectoryMode=0700" \
    "Restart=on-failure" "RestartSec=2" "RestartPreventExitStatus=2" "TimeoutStopSec=45" "KillSignal=SIGTERM" \
    "LimitNOFILE=65536" \
    "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "PrivateDevices=yes" \
    "ProtectKernelTunables=yes" "ProtectKernelModules=yes" "ProtectControlGroups=yes" "ProtectClock=yes" \
    "ProtectHostname=yes" "RestrictNamespaces=yes" "RestrictRealtime=yes" "RestrictSUIDSGID=yes" \
    "LockPersonality=yes" "MemoryDenyWriteExecute=yes" "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
    "SystemCallArchitectures=native" "CapabilityBoundingSet=" "AmbientCapabilities=" "UMask=0077" \
    "WantedBy=multi-user.target"; do
    if [[ $line == *"=*" ]]; then
        check "unit has $line" grep -q "^${line%\*}." "$unit_file"
    else
        check "unit has $line" grep -qxF -e "$line" "$unit_file"
    fi
done
check "unit mentions CAP_NET_BIND_SERVICE for ports below 1024" grep -q "CAP_NET_BIND_SERVICE" "$unit_file"
# Stopping waits SHUTDOWN_TIMEOUT (its default in src/config.rs), then hajimi
# saves its state: TimeoutStopSec leaves at least 10 s for that.
shutdown_default=$(sed -n 's/^ *("SHUTDOWN_TIMEOUT", "\([0-9]*\)").*/\1/p' "$repo/src/config.rs")
stop_timeout=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit_file")
if [[ -n $shutdown_default && -n $stop_timeout ]] && ((stop_timeout >= shutdown_default + 10)); then
    pass "TimeoutStopSec ($stop_timeout s) leaves 10 s over SHUTDOWN_TIMEOUT's default ($shutdown_default s)"
else
    fail "TimeoutStopSec (${stop_timeout:-?} s) leaves 10 s over SHUTDOWN_TIMEOUT's default (${shutdown_default:-?} s)"
fi
# RestartPreventExitStatus=2 is right only if a configuration error exits
# with 2 (and a healthy stop does not): a malformed setting, a bad argument.
env -i PATH=/usr/bin:/bin PORT=not-a-port STORAGE_DIR="$scratch/bad-config" "$binary" >"$scratch/bad.log" 2>&1
rc=$?
if [[ $rc -eq 2 ]]; then pass "a malformed setting (PORT=not-a-port) exits with status 2"; else fail "a malformed setting (PORT=not-a-port) exits with status 2 (status $rc)" "$(tail -n 5 "$scratch/bad.log")"; fi
"$binary" --no-such-option >"$scratch/bad.log" 2>&1
rc=$?
if [[ $rc -eq 2 ]]; then pass "an unknown argument exits with status 2"; else fail "an unknown argument exits with status 2 (status $rc)" "$(tail -n 5 "$scratch/bad.log")"; fi
check "unit has the [Unit], [Service] and [Install] sections" \
    test "$(grep -cE '^\[(Unit|Service|Install)\]$' "$unit_file")" -eq 3
check "unit does not mention DESTDIR" test -z "$(grep -F -e "$DESTDIR" "$unit_file")"

# systemd-analyze verify: with --root on a copy of DESTDIR plus the host's
# own units (for sysinit.target & co.), so ExecStart=/usr/local/bin/hajimi
# resolves to the installed binary. Only messages about hajimi.service count.
if command -v systemd-analyze >/dev/null 2>&1; then
    host_units=""
    for dir in /usr/lib/systemd/system /lib/systemd/system; do
        if [[ -d $dir ]]; then host_units=$dir; break; fi
    done
    if systemd-analyze verify --help 2>&1 | grep -q -e '--root' && [[ -n $host_units ]]; then
        verify_root=$scratch/verify-root
        mkdir -p "$verify_root/usr/lib/systemd"
        cp -a "$DESTDIR/." "$verify_root/"
        cp -a "$host_units" "$verify_root/usr/lib/systemd/system"
        verify_out=$(systemd-analyze verify --man=no --root="$verify_root" hajimi.service 2>&1)
        verify_rc=$?
    elif [[ -x /usr/local/bin/hajimi ]]; then
        mkdir -p "$scratch/verify"
        cp "$unit_file" "$scratch/verify/hajimi.service"
        verify_out=$(systemd-analyze verify --man=no "$scratch/verify/hajimi.service" 2>&1)
        verify_rc=$?
    else
        verify_out=skip
        verify_rc=0
    fi
    if [[ $verify_out == skip ]]; then
        echo "skip  systemd-analyze verify: no --root support and /usr/local/bin/hajimi is not on this host"
    else
        own=$(grep -F "hajimi.service" <<<"$verify_out")
        if [[ $verify_rc -eq 0 && -z $own ]]; then
            pass "systemd-analyze verify accepts the unit"
        else
            fail "systemd-analyze verify accepts the unit (status $verify_rc)" "$verify_out"
        fi
    fi
else
    echo "skip  systemd-analyze not installed"
fi

# ---------------------------------------------------------------- idempotence

before=$(snapshot)
run_install --binary "$binary"
check "second run exits 0" test "$rc" -eq 0
check "second run prints 'nothing changed'" grep -qx "nothing changed" <<<"$out"
after=$(snapshot)
if [[ $before == "$after" ]]; then pass "second run changes no file (content and mtime)"; else fail "second run changes no file (content and mtime)" "$(diff <(echo "$before") <(echo "$after"))"; fi

# The operator edits the config: it is kept as it is.
echo "RUST_LOG=debug # added by the test" >>"$config_file"
chmod 0600 "$config_file"
before=$(snapshot)
run_install --binary "$binary"
after=$(snapshot)
check "run after a config edit exits 0" test "$rc" -eq 0
check "the edited config is not overwritten" grep -qx "RUST_LOG=debug # added by the test" "$config_file"
check "the PASSWORD is unchanged" grep -qxF -e "PASSWORD=$password" "$config_file"
check "the config's mode is left as the operator set it" test "$(mode_of "$config_file")" = 600
check "run after a config edit prints 'nothing changed'" grep -qx "nothing changed" <<<"$out"
if [[ $before == "$after" ]]; then pass "run after a config edit changes no file (content and mtime)"; else fail "run after a config edit changes no file (content and mtime)" "$(diff <(echo "$before") <(echo "$after"))"; fi

# A binary whose mode was changed is put back to 0755 without being rewritten.
chmod 0700 "$bin_file"
run_install --binary "$binary"
check "binary mode is restored to 755" test "$(mode_of "$bin_file")" = 755

# ---------------------------------------------------------------- update

printf '#!/bin/sh\necho "hajimi 99.0.0"\n' >"$scratch/new-hajimi"
chmod 0755 "$scratch/new-hajimi"
unit_before=$(stat -c %Y.%s "$unit_file")
config_before=$(stat -c %Y "$config_file")
run_install --binary "$scratch/new-hajimi"
check "update with a new binary exits 0" test "$rc" -eq 0
check "update replaces the binary" cmp -s "$scratch/new-hajimi" "$bin_file"
check "update reports the binary" grep -q "installed $bin_file" <<<"$out"
check "update leaves the unit alone" test "$(stat -c %Y.%s "$unit_file")" = "$unit_before"
check "update leaves the config alone" test "$(stat -c %Y "$config_file")" = "$config_before"
# A changed unit (say, edited by hand) is put back.
echo "# local edit" >>"$unit_file"
run_install --binary "$binary"
check "back to the real binary" cmp -s "$binary" "$bin_file"
check "a modified unit is replaced" test -z "$(grep -x "# local edit" "$unit_file")"

# ---------------------------------------------------------------- uninstall

mkdir -p "$DESTDIR/var/lib/hajimi"
echo "fake data" >"$DESTDIR/var/lib/hajimi/hajimi.db"
run_install --uninstall
check "--uninstall exits 0" test "$rc" -eq 0
check "--uninstall removes the binary" test ! -e "$bin_file"
check "--uninstall removes the unit" test ! -e "$unit_file"
check "--uninstall keeps the config" grep -qx "RUST_LOG=debug # added by the test" "$config_file"
check "--uninstall keeps the data" grep -qx "fake data" "$DESTDIR/var/lib/hajimi/hajimi.db"
check "--uninstall says it kept /etc/hajimi" grep -q "kept $DESTDIR/etc/hajimi" <<<"$out"
check "--uninstall says it kept /var/lib/hajimi" grep -q "kept $DESTDIR/var/lib/hajimi" <<<"$out"
run_install --uninstall
check "--uninstall again exits 0" test "$rc" -eq 0

# Reinstalling keeps the old config.
run_install --binary "$binary"
check "reinstall after --uninstall keeps the config" grep -qx "RUST_LOG=debug # added by the test" "$config_file"

mkdir -p "$unit_file.d"
printf '[Service]\nEnvironment=RUST_LOG=debug\n' >"$unit_file.d/override.conf"
run_install --uninstall --purge
check "--uninstall --purge exits 0" test "$rc" -eq 0
check "--purge removes the binary and the unit" test ! -e "$bin_file" -a ! -e "$unit_file"
check "--purge removes /etc/hajimi" test ! -e "$DESTDIR/etc/hajimi"
check "--purge removes /var/lib/hajimi" test ! -e "$DESTDIR/var/lib/hajimi"
check "--purge removes the unit's drop-ins" test ! -e "$unit_file.d"
check "--purge leaves no file behind" test -z "$(find "$DESTDIR" -type f)"

# ---------------------------------------------------------------- release archive

# scripts/package.sh, as the Release workflow runs it: the binary, install.sh,
# README.md, the docs (en, zh) and deploy/, owned by root, with a checksum.
package_out=$(bash "$repo/scripts/package.sh" 0.0.0-test x86_64-unknown-linux-musl "$binary" "$scratch/dist" 2>&1)
rc=$?
archive=$scratch/dist/hajimi-0.0.0-test-x86_64-unknown-linux-musl.tar.gz
if [[ $rc -eq 0 && -f $archive ]]; then pass "package.sh makes the release archive"; else fail "package.sh makes the release archive (status $rc)" "$package_out"; fi
# shellcheck disable=SC2016 # $1 and $2 are the inner shell's
check "the archive's .sha256 verifies" bash -c 'cd "$1" && sha256sum -c --quiet "$2.sha256"' _ "$scratch/dist" "$(basename -- "$archive")"
listing=$(tar -tzvf "$archive" 2>&1)
names=$(tar -tzf "$archive" 2>&1)
top=hajimi-0.0.0-test-x86_64-unknown-linux-musl
for name in hajimi install.sh README.md docs/en/settings.md docs/zh/settings.md deploy/replicas/compose.yaml; do
    check "the archive holds $name" grep -qx -e "$top/$name" <<<"$names"
done
missing=""
for doc in "$repo"/docs/en/*.md "$repo"/docs/zh/*.md; do
    grep -qx -e "$top/docs/${doc#"$repo"/docs/}" <<<"$names" || missing+="${doc#"$repo"/} "
done
if [[ -z $missing ]]; then pass "the archive holds every guide in docs/en and docs/zh"; else fail "the archive holds every guide in docs/en and docs/zh" "missing: $missing"; fi
check "every file in the archive is owned by 0/0" test -z "$(awk '$2 != "0/0"' <<<"$listing")"
check "nothing outside one top folder" test -z "$(grep -v -e "^$top/" -e "^$top\$" <<<"$names")"
mkdir -p "$scratch/unpacked"
tar -xzf "$archive" -C "$scratch/unpacked"
unpacked=$scratch/unpacked/$top
check "the archive's hajimi is the given binary, mode 755" \
    test "$(mode_of "$unpacked/hajimi")" = 755 -a "$(cmp -s "$binary" "$unpacked/hajimi" && echo same)" = same
check "the archive's install.sh is scripts/install.sh, mode 755" \
    test "$(mode_of "$unpacked/install.sh")" = 755 -a "$(cmp -s "$install_sh" "$unpacked/install.sh" && echo same)" = same
# The guides reach each other: every relative link in the archive's Markdown
# to docs/ or deploy/ resolves inside it (links to the repository's
# developer files, ARCHITECTURE.md and the like, are not shipped).
broken=""
while IFS= read -r md; do
    while IFS= read -r link; do
        link=${link%%#*}
        [[ -z $link || $link == *://* || $link == mailto:* ]] && continue
        target=$(realpath -m -- "$(dirname -- "$md")/$link")
        case ${target#"$unpacked"/} in
            docs/* | deploy/*) [[ -e $target ]] || broken+="${md#"$unpacked"/} -> $link"$'\n' ;;
        esac
    done < <(grep -oE '\]\([^) ]+\)' "$md" | sed -E 's/^\]\((.*)\)$/\1/')
done < <(find "$unpacked" -name '*.md')
if [[ -z $broken ]]; then pass "every link of the archive's Markdown into docs/ and deploy/ resolves"; else fail "every link of the archive's Markdown into docs/ and deploy/ resolves" "$broken"; fi
# As a user would: unpack, cd into the folder, run install.sh (finds ./hajimi).
out=$(cd "$unpacked" && DESTDIR=$scratch/from-archive bash ./install.sh 2>&1)
rc=$?
check "install.sh from the unpacked archive installs its ./hajimi" \
    test "$rc" -eq 0 -a "$(cmp -s "$binary" "$scratch/from-archive/usr/local/bin/hajimi" && echo same)" = same

echo
summary
