# Sourced by scripts/test, scripts/package and scripts/demo: installs what the project needs
# when it is missing (a fresh machine has none of it), then checks the Rust toolchain.
#   rsyslog, rsyslog-gnutls   the daemon the tests and the demo run (and its TLS driver)
#   libclang-dev              bindgen, for include/rsyslog.h
#   valgrind binutils python3 the memcheck test, objdump/nm checks, the demo's helpers
#   rpm rpm2cpio cpio         rpmbuild for the .rpm; rpm --root installs and unpacking in its tests
#   debootstrap               Debian roots for the rsyslog version matrix (scripts/rsyslog-root)
#   checkpolicy semodule-utils apparmor   compile the shipped SELinux and AppArmor files
#   libfaketime               steps rsyslogd's wall clock in the clock test
#   man-db                    renders the packaged man pages in the packaging test (man -l)
#   logrotate                 runs the shipped logrotate file in its test
#   python3-prometheus-client parses `omcmsync status --format openmetrics` in its test
#   openssh-server openssh-client  a real sshd in front of the CM stand-in, ssh-keygen (tests/ossi.rs)
omcm_packages="openssh-server openssh-client rsyslog rsyslog-gnutls libclang-dev valgrind binutils python3 rpm rpm2cpio cpio debootstrap checkpolicy semodule-utils apparmor libfaketime man-db logrotate python3-prometheus-client"

omcm_install_deps() {
    local missing=()
    for p in $omcm_packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        # No service of a package installed here is started (openssh-server's sshd on port 22,
        # rsyslog's): the tests start their own daemons. policy-rc.d says so to invoke-rc.d.
        local policy=/usr/sbin/policy-rc.d own_policy=""
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
            $sudo chmod 755 "$policy"
            own_policy=1
        fi
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        [ -z "$own_policy" ] || $sudo rm -f "$policy"
    fi
    # The distribution's rsyslog service is not ours to run: tests start their own daemons.
    command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup)"; exit 1; }
}

# The packaging tools: cargo subcommands from crates.io, and zig (from PyPI's ziglang) as the
# linker that lets cargo-zigbuild build against glibc 2.28.
omcm_install_packaging_tools() {
    for tool in cargo-deb cargo-zigbuild; do
        command -v "$tool" >/dev/null || { echo "== installing $tool"; cargo install --locked --quiet "$tool"; }
    done
    python3 -m ziglang version >/dev/null 2>&1 || {
        echo "== installing ziglang"
        python3 -m pip install --quiet --root-user-action=ignore ziglang
    }
}
