# Sourced by scripts/test and scripts/demo: installs the Debian packages the project needs when
# they are missing (a fresh machine has none of them), then checks the Rust toolchain.
omcm_packages="rsyslog rsyslog-gnutls libclang-dev valgrind binutils python3 rpm"

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
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # The distribution's rsyslog service is not ours to run: tests start their own daemons.
    command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup)"; exit 1; }
}

# The packaging tools (cargo subcommands from crates.io), for the test suite.
omcm_install_packaging_tools() {
    for tool in cargo-deb cargo-generate-rpm; do
        command -v "$tool" >/dev/null || { echo "== installing $tool"; cargo install --locked --quiet "$tool"; }
    done
}
