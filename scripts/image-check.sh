#!/usr/bin/env bash
# Builds the container image from an already built static binary and checks
# what a Hugging Face Space and a VPS rely on. Run by .ci/run after
# `make static-check`, as root (it installs Debian's podman, buildah and runc
# when missing):
#
#   scripts/image-check.sh target/x86_64-unknown-linux-musl/release/hajimi
#
# The image: the final stage of ./Dockerfile, verbatim (from its last
# `FROM scratch` to the end), on a first stage that holds the given binary
# instead of compiling it (a generated Containerfile; context: the binary,
# a `uvicorn` symlink to it and an empty data/). The Dockerfile's builder
# stages (amd64: Debian, profile-guided; arm64: Alpine) do not run here
# (scripts/dockerfile-context-check.sh checks the amd64 one's files), so
# their /out (bin/hajimi, bin/uvicorn -> hajimi, data/) is what this script
# reproduces: keep them in step. Built with buildah in Docker format (the OCI format has no
# HEALTHCHECK), in about a second.
#
# Checks:
#   - the image's config: user 1000:1000, port 7860/tcp, the /data volume,
#     HOST/PORT/STORAGE_DIR, CMD hajimi, no entrypoint, the HEALTHCHECK;
#   - its files: only /usr/local/bin/hajimi (the given binary), the
#     /usr/local/bin/uvicorn link to it and /data owned by 1000:1000;
#   - a container of it (podman): answers GET /health on a published port,
#     its HEALTHCHECK passes (`podman healthcheck run`), runs as UID 1000,
#     creates /data/hajimi.db in the volume; a key added in the dashboard is
#     still there after a stop (SIGTERM, exit 0, state saved) and a start,
#     and again in a new container on the same volume started as the
#     original's Space ran it: `uvicorn app.main:app --host 0.0.0.0 --port
#     7860`, which prints the dashboard setup code when no WEB_PASSWORD is
#     set; a host directory owned by 1000 works as /data too.
#
# Where no container can run (seen on some sandboxes: no permission to raise
# RLIMIT_NOFILE, cgroups v1/v2 hybrid refused by crun), each attempt's error
# is printed and the same run checks are made on the image's root file
# system, copied out of the image: its binary started by chroot as
# 1000:1000 with the image's environment, on loopback. IMAGE_CHECK_MODE=rootfs
# forces that way (to test it); IMAGE_CHECK_STORAGE=vfs uses buildah's vfs
# storage driver (in a private store) instead of the default (overlay).
#
# Prints one line per check and, last, "N passed, N failed"; exits 1 when a
# check failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

if (($# != 1)) || [[ ! -f $1 || ! -x $1 ]]; then
    echo "usage: scripts/image-check.sh PATH_TO_STATIC_HAJIMI_BINARY" >&2
    exit 2
fi
binary=$(cd -- "$(dirname -- "$1")" && pwd)/$(basename -- "$1")

source "$(dirname -- "${BASH_SOURCE[0]}")/checks.sh"
finish() {
    echo
    summary || exit 1
    exit 0
}

# ---------------------------------------------------------------- tools

missing=()
for tool in podman buildah runc; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if ((${#missing[@]} > 0)); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing ${missing[*]} (Debian)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
            { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
    fi
fi
for tool in podman buildah python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        fail "$tool is installed (as root: apt-get install podman buildah runc)"
        finish
    fi
done
echo "$(podman --version), $(buildah --version | cut -d' ' -f1-3), $(runc --version 2>/dev/null | head -n 1 || echo 'no runc')"

work=$(mktemp -d /tmp/hajimi-image-check.XXXXXX)
store=()
if [[ ${IMAGE_CHECK_STORAGE:-} == vfs ]]; then
    store=(--storage-driver vfs --root "$work/storage" --runroot "$work/run")
fi
tag=localhost/hajimi-image-check:$$
containers=()
volumes=()
working=""
pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    for name in "${containers[@]}"; do podman "${store[@]}" rm -f -t 0 "$name" >/dev/null 2>&1; done
    for name in "${volumes[@]}"; do podman "${store[@]}" volume rm -f "$name" >/dev/null 2>&1; done
    if [[ -n $working ]]; then
        buildah "${store[@]}" umount "$working" >/dev/null 2>&1
        buildah "${store[@]}" rm "$working" >/dev/null 2>&1
    fi
    podman "${store[@]}" rmi -f "$tag" >/dev/null 2>&1
    rm -rf -- "$work"
}
trap cleanup EXIT

# Requests from the host, in Python (no curl needed): health, the dashboard
# (log in with WEB_PASSWORD, add a key), the key count from /metrics.
cat >"$work/client.py" <<'PY'
import http.client, json, re, sys, time, urllib.parse

def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data

def health(port, seconds):
    """Wait up to `seconds` for GET /health 200 with status ok; print the body."""
    deadline, last = time.monotonic() + float(seconds), "no answer"
    while time.monotonic() < deadline:
        try:
            response, data = request(port, "GET", "/health")
            last = f"HTTP {response.status}: {data[:200]!r}"
            if response.status == 200 and json.loads(data).get("status") == "ok":
                print(data.decode())
                return 0
        except (OSError, ValueError, http.client.HTTPException) as error:
            last = str(error)
        time.sleep(0.1)
    print(last)
    return 1

def add_key(port, password, key):
    response, page = request(port, "GET", "/login")
    login = re.search(r"hajimi_login=([0-9a-f]+)", response.getheader("set-cookie") or "").group(1)
    csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', page).group(1).decode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response, _ = request(port, "POST", "/login", urllib.parse.urlencode({"csrf": csrf, "password": password}),
                          {**form, "Cookie": f"hajimi_login={login}"})
    session = re.search(r"hajimi_session=([0-9a-f]+)", response.getheader("set-cookie") or "")
    if not session:
        print(f"login refused: HTTP {response.status}")
        return 1
    cookie = {"Cookie": f"hajimi_session={session.group(1)}"}
    response, page = request(port, "GET", "/keys", headers=cookie)
    csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', page).group(1).decode()
    response, _ = request(port, "POST", "/keys/add", urllib.parse.urlencode({"csrf": csrf, "keys": key}), {**cookie, **form})
    print(f"POST /keys/add: HTTP {response.status}")
    return 0 if response.status in (200, 303) else 1

def keys(port, token):
    """AI Studio keys in the pool (active + invalid + disabled), from /metrics."""
    response, data = request(port, "GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
    if response.status != 200:
        print(f"HTTP {response.status}")
        return 1
    total = sum(int(float(value)) for state, value in
                re.findall(r'^hajimi_keys\{pool="studio",state="(active|invalid|disabled)"\} (\S+)$', data.decode(), re.M))
    print(total)
    return 0

def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        print(sock.getsockname()[1])
    return 0

sys.exit(globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:]))
PY
client() { python3 "$work/client.py" "$@"; }

# ---------------------------------------------------------------- build

context=$work/context
mkdir -p "$context/out/bin" "$context/out/data"
cp -- "$binary" "$context/out/bin/hajimi"
ln -s hajimi "$context/out/bin/uvicorn"
final_stage=$(awk '/^FROM scratch([[:space:]]|$)/ { stage = "" } { stage = stage $0 "\n" } END { printf "%s", stage }' Dockerfile)
if ! grep -q '^FROM scratch' <<<"$final_stage"; then
    fail "Dockerfile ends with a FROM scratch stage"
    finish
fi
{
    echo "# Generated by scripts/image-check.sh: the given binary instead of the"
    echo "# builder stage, then the final stage of ./Dockerfile, verbatim."
    echo "FROM scratch AS builder"
    echo "COPY out/ /out/"
    echo
    printf '%s' "$final_stage"
} >"$context/Containerfile"
started=$SECONDS
if build_out=$(buildah "${store[@]}" build --format docker --layers=false -t "$tag" -f "$context/Containerfile" "$context" 2>&1); then
    pass "buildah builds the Dockerfile's final stage on the binary ($((SECONDS - started)) s, Docker format)"
elif [[ ${#store[@]} -eq 0 ]]; then
    fail "buildah build with the default storage driver" "$(tail -n 20 <<<"$build_out")"
    echo "retrying with the vfs storage driver"
    store=(--storage-driver vfs --root "$work/storage" --runroot "$work/run")
    if build_out=$(buildah "${store[@]}" build --format docker --layers=false -t "$tag" -f "$context/Containerfile" "$context" 2>&1); then
        pass "buildah builds the image with the vfs storage driver"
    else
        fail "buildah builds the image with the vfs storage driver" "$(tail -n 20 <<<"$build_out")"
        finish
    fi
else
    fail "buildah build" "$(tail -n 20 <<<"$build_out")"
    finish
fi

# ---------------------------------------------------------------- config

inspect=$(podman "${store[@]}" image inspect "$tag" 2>&1)
config=$(python3 -c '
import json, sys
image = json.loads(sys.stdin.read())[0]
config = image.get("Config") or {}
env = dict(item.split("=", 1) for item in config.get("Env") or [])
health = image.get("Healthcheck") or config.get("Healthcheck") or {}
for key, value in [
    ("user", config.get("User", "")),
    ("ports", " ".join(sorted(config.get("ExposedPorts") or {}))),
    ("volumes", " ".join(sorted(config.get("Volumes") or {}))),
    ("cmd", json.dumps(config.get("Cmd"))),
    ("entrypoint", json.dumps(config.get("Entrypoint") or [])),
    ("health", json.dumps(health.get("Test"))),
    ("health_interval", str(health.get("Interval", 0) // 10**9)),
    ("health_timeout", str(health.get("Timeout", 0) // 10**9)),
    ("platform", image.get("Os", "") + "/" + image.get("Architecture", "")),
    ("env_HOST", env.get("HOST", "")),
    ("env_PORT", env.get("PORT", "")),
    ("env_STORAGE_DIR", env.get("STORAGE_DIR", "")),
    ("env_PATH", env.get("PATH", "")),
    ("env", " ".join(config.get("Env") or [])),
]:
    print(f"{key}\t{value}")
' <<<"$inspect" 2>&1)
declare -A image=()
while IFS=$'\t' read -r key value; do image[$key]=$value; done <<<"$config"
echo "image config: user ${image[user]:-?}, ports ${image[ports]:-?}, volumes ${image[volumes]:-?}, cmd ${image[cmd]:-?}, healthcheck ${image[health]:-?}"
check "config: runs as user 1000:1000" test "${image[user]:-}" = 1000:1000
check "config: exposes 7860/tcp" test "${image[ports]:-}" = 7860/tcp
check "config: /data is a volume" test "${image[volumes]:-}" = /data
check "config: HOST=0.0.0.0 PORT=7860 STORAGE_DIR=/data" \
    test "${image[env_HOST]:-}:${image[env_PORT]:-}:${image[env_STORAGE_DIR]:-}" = 0.0.0.0:7860:/data
check "config: CMD [\"hajimi\"] and no ENTRYPOINT (so a command replaces it)" \
    test "${image[cmd]:-}|${image[entrypoint]:-}" = '["hajimi"]|[]'
check "config: HEALTHCHECK runs hajimi healthcheck (every ${image[health_interval]:-?} s)" \
    test "${image[health]:-}" = '["CMD", "/usr/local/bin/hajimi", "healthcheck"]'
check "config: platform linux/amd64" test "${image[platform]:-}" = linux/amd64

# ---------------------------------------------------------------- files

rootfs=$work/rootfs
mkdir -p "$rootfs"
if working=$(buildah "${store[@]}" from "$tag" 2>&1) && mounted=$(buildah "${store[@]}" mount "$working" 2>&1); then
    cp -a -- "$mounted/." "$rootfs/"
    buildah "${store[@]}" umount "$working" >/dev/null 2>&1
    buildah "${store[@]}" rm "$working" >/dev/null 2>&1
    working=""
else
    fail "buildah mounts the image" "$working ${mounted:-}"
    working=""
fi
listing=$(cd "$rootfs" && find . -mindepth 1 | sort | tr '\n' ' ')
check "files: only /usr/local/bin/{hajimi,uvicorn} and /data" \
    test "$listing" = "./data ./usr ./usr/local ./usr/local/bin ./usr/local/bin/hajimi ./usr/local/bin/uvicorn "
check "files: /usr/local/bin/hajimi is the given binary" cmp -s "$binary" "$rootfs/usr/local/bin/hajimi"
check "files: /usr/local/bin/uvicorn links to hajimi (the original's Space command)" \
    test "$(readlink "$rootfs/usr/local/bin/uvicorn" 2>/dev/null)" = hajimi
check "files: /data is owned by 1000:1000" test "$(stat -c %u:%g "$rootfs/data" 2>/dev/null)" = 1000:1000

# ---------------------------------------------------------------- run

api_password=image-check-api-$$
web_password=image-check-dashboard-$$
metrics_token=image-check-metrics-$$
key=AIzaImageCheck$(printf '%021d' "$$")Img7
nofile=$(ulimit -Hn)
[[ $nofile == unlimited || $nofile -gt 65536 ]] && nofile=65536
run_flags=()
mode=${IMAGE_CHECK_MODE:-container}

# The container way: a podman container per server, the image's own
# environment, a published loopback port.
server=""
port=""
start_container() { # start_container NAME VOLUME_OR_DIR ENV... [-- COMMAND...]
    local name=$1 data=$2
    shift 2
    local args=() command=()
    while (($# > 0)); do
        if [[ $1 == -- ]]; then shift; command=("$@"); break; fi
        args+=(-e "$1")
        shift
    done
    port=$(client free-port)
    containers+=("$name")
    podman "${store[@]}" run -d --name "$name" "${run_flags[@]}" -p "127.0.0.1:$port:7860" -v "$data:/data" \
        "${args[@]}" "$tag" "${command[@]}" >"$work/$name.run" 2>&1
}
# The root file system way: chroot as 1000:1000 with the image's environment
# (whose PATH is the image's: chroot by its full path). fixed_port=N keeps a port.
chroot=$(command -v chroot || echo /usr/sbin/chroot)
start_rootfs() { # start_rootfs NAME DATA_DIR ENV... [-- COMMAND...]
    local name=$1
    shift 2
    local args=() command=(hajimi)
    while (($# > 0)); do
        if [[ $1 == -- ]]; then shift; command=("$@"); break; fi
        args+=("$1")
        shift
    done
    port=${fixed_port:-$(client free-port)}
    # The image's HOST (0.0.0.0) would listen on every address of this
    # machine: loopback only, with the port chosen here.
    local image_env=()
    read -r -a image_env <<<"${image[env]}"
    env -i "${image_env[@]}" HOST=127.0.0.1 PORT="$port" "${args[@]}" \
        "$chroot" --userspec=1000:1000 "$rootfs" "${command[@]}" >"$work/$name.log" 2>&1 &
    server=$!
    pids+=("$server")
}

attempt() { # attempt DESCRIPTION FLAGS...: try to start a container; the error stays in $attempt_error
    local description=$1
    shift
    run_flags=("$@")
    podman "${store[@]}" volume create "image-check-probe-$$" >/dev/null 2>&1 && volumes+=("image-check-probe-$$")
    start_container "image-check-probe-$$" "image-check-probe-$$" VALIDATE_KEYS_ON_STARTUP=false
    local rc=$?
    attempt_error=$(grep -v 'systemd connection' "$work/image-check-probe-$$.run" | grep -v '^[0-9a-f]\{64\}$')
    if ((rc == 0)) && client health "$port" 15 >/dev/null; then
        podman "${store[@]}" rm -f -t 0 "image-check-probe-$$" >/dev/null 2>&1
        echo "a container runs: podman run ${description}"
        return 0
    fi
    [[ -n $attempt_error ]] || attempt_error=$(podman "${store[@]}" logs "image-check-probe-$$" 2>&1 | tail -n 5)
    podman "${store[@]}" rm -f -t 0 "image-check-probe-$$" >/dev/null 2>&1
    echo "no container with podman run ${description}:"
    printf '%s\n' "${attempt_error:-?}" | sed 's/^/  | /'
    return 1
}

if [[ $mode == container ]]; then
    # podman asks for RLIMIT_NOFILE 1048576 by default; raising a limit needs
    # CAP_SYS_RESOURCE, which a sandbox may not give. crun refuses a cgroups
    # v1/v2 hybrid with controllers on v2; runc takes it.
    limits=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)
    if attempt "(defaults)"; then
        :
    elif attempt "${limits[*]} (limits this machine allows)" "${limits[@]}"; then
        :
    elif command -v runc >/dev/null && attempt "--runtime runc ${limits[*]}" --runtime runc "${limits[@]}"; then
        :
    else
        mode=rootfs
        echo "no container can run here (errors above): checking the image's root file system instead"
    fi
fi
if [[ $mode == container && ${run_flags[*]} == *ulimit* ]]; then
    echo "(a real host runs the image with podman's or Docker's defaults; these flags only fit this machine)"
fi
if [[ $mode == container ]]; then
    echo "(podman finds no systemd here for healthcheck timers: its 'systemd connection' errors are left out; 'podman healthcheck run' runs the check)"
fi

if [[ $mode == container ]]; then
    volume=image-check-data-$$
    podman "${store[@]}" volume create "$volume" >/dev/null && volumes+=("$volume")
    first=image-check-1-$$
    start_container "$first" "$volume" PASSWORD="$api_password" WEB_PASSWORD="$web_password" \
        METRICS_TOKEN="$metrics_token" VALIDATE_KEYS_ON_STARTUP=false
    if out=$(client health "$port" 20); then
        pass "container: GET /health answers 200 on the published port: $out"
    else
        fail "container: GET /health answers 200 on the published port" "$out$(podman "${store[@]}" logs "$first" 2>&1 | tail -n 20)"
    fi
    podman "${store[@]}" healthcheck run "$first" >"$work/healthcheck.out" 2>&1
    rc=$?
    out=$(grep -v 'systemd connection' "$work/healthcheck.out")
    if [[ $rc -eq 0 ]]; then pass "container: its HEALTHCHECK passes (podman healthcheck run)"; else fail "container: its HEALTHCHECK passes (podman healthcheck run, status $rc)" "$out"; fi
    check "container: health status is healthy" test "$(podman "${store[@]}" inspect -f '{{.State.Health.Status}}' "$first" 2>/dev/null)" = healthy
    if out=$(podman "${store[@]}" exec "$first" /usr/local/bin/hajimi healthcheck --port 9 2>&1); then
        fail "container: the healthcheck fails where nothing answers"
    else
        pass "container: the healthcheck fails where nothing answers ($out)"
    fi
    pid=$(podman "${store[@]}" inspect -f '{{.State.Pid}}' "$first" 2>/dev/null)
    ids=$(awk '/^Uid:/ { u = $2 } /^Gid:/ { g = $2 } END { print u ":" g }' "/proc/$pid/status" 2>/dev/null)
    check "container: the server runs as 1000:1000 (seen from the host: $ids)" test "$ids" = 1000:1000
    mountpoint=$(podman "${store[@]}" volume inspect -f '{{.Mountpoint}}' "$volume" 2>/dev/null)
    check "container: /data/hajimi.db created in the volume, owned by 1000" \
        test "$(stat -c %u "$mountpoint/hajimi.db" 2>/dev/null)" = 1000
    if out=$(client add-key "$port" "$web_password" "$key" 2>&1); then
        pass "container: a key added in the dashboard ($out)"
    else
        fail "container: a key added in the dashboard" "$out"
    fi
    check "container: the pool holds that key" test "$(client keys "$port" "$metrics_token")" = 1

    started=$SECONDS
    podman "${store[@]}" stop -t 40 "$first" >/dev/null 2>&1
    check "container: stops on SIGTERM with exit code 0 ($((SECONDS - started)) s)" \
        test "$(podman "${store[@]}" inspect -f '{{.State.ExitCode}}' "$first" 2>/dev/null)" = 0
    check "container: says its state was saved" grep -q "stopped; state saved" <(podman "${store[@]}" logs "$first" 2>&1)
    podman "${store[@]}" start "$first" >/dev/null 2>&1
    port=$(podman "${store[@]}" port "$first" 7860/tcp 2>/dev/null | sed 's/.*://')
    if out=$(client health "$port" 20); then
        pass "container: answers again after a restart"
    else
        fail "container: answers again after a restart" "$out"
    fi
    check "container: the key is still there after a restart" test "$(client keys "$port" "$metrics_token")" = 1
    podman "${store[@]}" stop -t 40 "$first" >/dev/null 2>&1
    podman "${store[@]}" rm -f "$first" >/dev/null 2>&1

    second=image-check-2-$$
    start_container "$second" "$volume" PASSWORD="$api_password" METRICS_TOKEN="$metrics_token" \
        VALIDATE_KEYS_ON_STARTUP=false -- uvicorn app.main:app --host 0.0.0.0 --port 7860
    if out=$(client health "$port" 20); then
        pass "container: 'uvicorn app.main:app --host 0.0.0.0 --port 7860' serves /health"
    else
        fail "container: 'uvicorn app.main:app --host 0.0.0.0 --port 7860' serves /health" "$out$(podman "${store[@]}" logs "$second" 2>&1 | tail -n 20)"
    fi
    check "container: a new container on the same volume has the key" test "$(client keys "$port" "$metrics_token")" = 1
    check "container: without WEB_PASSWORD the log has the dashboard setup code" \
        grep -Eq '^dashboard setup code: [[:alnum:]]{16,}$' <(podman "${store[@]}" logs "$second" 2>&1)
    podman "${store[@]}" stop -t 40 "$second" >/dev/null 2>&1

    # A VPS's own directory (docs/en/docker.md): writable by 1000.
    mkdir -p "$work/host-data"
    chown 1000:1000 "$work/host-data"
    third=image-check-3-$$
    start_container "$third" "$work/host-data" VALIDATE_KEYS_ON_STARTUP=false
    if out=$(client health "$port" 20); then
        pass "container: a host directory owned by 1000 works as /data"
    else
        fail "container: a host directory owned by 1000 works as /data" "$out$(podman "${store[@]}" logs "$third" 2>&1 | tail -n 20)"
    fi
    check "container: hajimi.db is in that directory" test -f "$work/host-data/hajimi.db"
    podman "${store[@]}" stop -t 40 "$third" >/dev/null 2>&1
else
    # The same, without a container: the image's files as the root, the
    # image's user and environment, and the image's HEALTHCHECK command.
    data=$rootfs/data
    start_rootfs first "$data" PASSWORD="$api_password" WEB_PASSWORD="$web_password" \
        METRICS_TOKEN="$metrics_token" VALIDATE_KEYS_ON_STARTUP=false
    if out=$(client health "$port" 20); then
        pass "rootfs: GET /health answers 200: $out"
    else
        fail "rootfs: GET /health answers 200" "$out$(tail -n 20 "$work/first.log")"
    fi
    health_command=()
    while IFS= read -r word; do health_command+=("$word"); done < <(python3 -c 'import json, sys; print("\n".join(json.loads(sys.argv[1])[1:]))' "${image[health]:-[]}")
    if out=$(env -i "PORT=$port" "$chroot" --userspec=1000:1000 "$rootfs" "${health_command[@]}" 2>&1); then
        pass "rootfs: the HEALTHCHECK command (${health_command[*]}) passes"
    else
        fail "rootfs: the HEALTHCHECK command passes" "$out"
    fi
    if out=$(env -i PORT=9 "$chroot" --userspec=1000:1000 "$rootfs" "${health_command[@]}" 2>&1); then
        fail "rootfs: the healthcheck fails where nothing answers"
    else
        pass "rootfs: the healthcheck fails where nothing answers ($out)"
    fi
    ids=$(awk '/^Uid:/ { u = $2 } /^Gid:/ { g = $2 } END { print u ":" g }' "/proc/$server/status" 2>/dev/null)
    check "rootfs: the server runs as 1000:1000 ($ids)" test "$ids" = 1000:1000
    check "rootfs: /data/hajimi.db created, owned by 1000" test "$(stat -c %u "$data/hajimi.db" 2>/dev/null)" = 1000
    if out=$(client add-key "$port" "$web_password" "$key" 2>&1); then
        pass "rootfs: a key added in the dashboard ($out)"
    else
        fail "rootfs: a key added in the dashboard" "$out"
    fi
    check "rootfs: the pool holds that key" test "$(client keys "$port" "$metrics_token")" = 1
    kill -TERM "$server"
    wait "$server"
    check "rootfs: stops on SIGTERM with exit code 0" test $? -eq 0
    check "rootfs: says its state was saved" grep -q "stopped; state saved" "$work/first.log"
    fixed_port=$port start_rootfs second "$data" PASSWORD="$api_password" METRICS_TOKEN="$metrics_token" \
        VALIDATE_KEYS_ON_STARTUP=false -- uvicorn app.main:app --host 127.0.0.1 --port "$port"
    if out=$(client health "$port" 20); then
        pass "rootfs: 'uvicorn app.main:app --host … --port …' serves /health after a restart"
    else
        fail "rootfs: 'uvicorn app.main:app --host … --port …' serves /health after a restart" "$out$(tail -n 20 "$work/second.log")"
    fi
    check "rootfs: the key is still there after the restart" test "$(client keys "$port" "$metrics_token")" = 1
    check "rootfs: without WEB_PASSWORD the log has the dashboard setup code" \
        grep -Eq '^dashboard setup code: [[:alnum:]]{16,}$' "$work/second.log"
    kill -TERM "$server"
    wait "$server"
fi

finish
