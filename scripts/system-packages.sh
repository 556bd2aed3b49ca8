#!/usr/bin/env bash
# The Debian packages the tests start for real, installed by `npm test` itself (its pretest step),
# so the README's two commands are the whole set-up on a fresh machine:
#   nginx-light + dav-ext  the HTTP (WebDAV) remote's server
#   chromium               the HTML reports and `lockstep ui`, driven by playwright-core
#   redis-server           the queue behind `exp run --distributed` and `lockstep worker`
#   podman, runc, mmdebstrap, uidmap  `container:` stages and the service image (base images built locally)
#   catatonit              podman's `--init` (PID 1 that forwards SIGTERM), used by container stages and the service image
# Idempotent: it checks what is there and installs only what is missing, so a warm machine pays
# nothing. As root it runs apt-get directly; otherwise through sudo. LOCKSTEP_SKIP_SYSTEM_PACKAGES=1
# skips it (for a machine where you manage these yourself).
set -euo pipefail
[ "${LOCKSTEP_SKIP_SYSTEM_PACKAGES:-}" = "1" ] && exit 0
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_http_dav_ext_module.so ] || need+=(libnginx-mod-http-dav-ext)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
[ -e /usr/libexec/podman/catatonit ] || command -v catatonit >/dev/null 2>&1 || need+=(catatonit)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "lockstep tests need these system packages: ${need[*]} (no apt-get here: install them yourself, or set LOCKSTEP_SKIP_SYSTEM_PACKAGES=1)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing system packages the tests use: ${need[*]}" >&2
start=$(date +%s)
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed in $(( $(date +%s) - start )) s" >&2
