#!/usr/bin/env bash
# Installs what onward needs on a fresh Debian machine, idempotently: the Arm and RISC-V cross compilers and QEMU
# (Debian packages), then the onward package itself with its test tools (pip, editable).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(gcc-arm-none-eabi binutils-arm-none-eabi qemu-system-arm gcc-riscv64-unknown-elf qemu-system-misc
              clang libclang-rt-14-dev  # clang and its libFuzzer/sanitizer runtimes: onward.fuzz
              openocd stlink-tools)  # flashing STM32 boards without PlatformIO's registry: onward.upload
missing=()
for tool in arm-none-eabi-gcc arm-none-eabi-size qemu-system-arm riscv64-unknown-elf-gcc qemu-system-riscv32 clang \
            openocd st-flash; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a" >/dev/null || missing+=("libFuzzer runtime")
if ((${#missing[@]})); then
    echo "setup: installing ${apt_packages[*]} (missing: ${missing[*]})"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 \
    | grep -v -e "Running pip as the 'root' user" -e "is ignored: it is neither a file nor a directory" || true
python3 -c "import onward" || { echo "setup: the onward package did not install" >&2; exit 1; }
# The MicroPython boards' stubs, for pyright on the generated module (tests/test_micropython.py): each port in a
# folder of its own under .onward/typings/, not in the venv (they shadow CPython's own modules).
for port in rp2 stm32; do
    [ -d ".onward/typings/$port" ] || python3 -m pip install -q --disable-pip-version-check \
        --target ".onward/typings/$port" "micropython-$port-stubs" 2>&1 | grep -v -e "Running pip as the 'root' user" \
        -e "is ignored: it is neither a file nor a directory" || true
    [ -d ".onward/typings/$port" ] || { echo "setup: micropython-$port-stubs did not install" >&2; exit 1; }
done
echo "setup: ok ($(arm-none-eabi-gcc -dumpversion), $(qemu-system-arm --version | head -n1))"
