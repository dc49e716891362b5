# CMake toolchain file: build the runtime (libattnrt.a) for 64-bit Arm Linux
# with Debian's cross compiler (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross):
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   cmake --build build-aarch64
#
# A cross build is a runtime-only build (ATTNC_RUNTIME_ONLY defaults to ON):
# attnc itself runs on the build machine and writes aarch64 objects with
# `--target aarch64-linux-gnu`.  Another toolchain of this triple is given
# with -DCMAKE_C_COMPILER=/path/to/aarch64-linux-gnu-gcc (ar, ranlib and nm
# are found beside it by their prefix) and its target tree with
# -DATTNC_SYSROOT=DIR (default /usr/aarch64-linux-gnu, Debian's).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

if(NOT CMAKE_C_COMPILER)
  set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES ATTNC_SYSROOT)
if(NOT ATTNC_SYSROOT)
  set(ATTNC_SYSROOT /usr/aarch64-linux-gnu)
endif()

# headers and libraries from the target's tree only; programs (cmake's own
# tools) from the build machine
set(CMAKE_FIND_ROOT_PATH ${ATTNC_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# how ctest and try_run run an aarch64 program on this machine
find_program(ATTNC_QEMU_AARCH64 qemu-aarch64)
if(ATTNC_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${ATTNC_QEMU_AARCH64} -L ${ATTNC_SYSROOT})
endif()
