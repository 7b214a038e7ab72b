# Cross build for aarch64-linux-gnu (Debian's crossbuild-essential-arm64); tests run under
# qemu-aarch64 from qemu-user. SG_QEMU_CPU (e.g. max, cortex-a53) picks the
# emulated CPU; scripts/test-arm.sh sets it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
# find_library looks in /usr/lib/<arch>, where the multiarch packages put the target libraries
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# multiarch -dev packages (:arm64) install their .pc files here
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
# qemu's -L is / (the multiarch libc6:arm64 loader in /lib), not /usr/aarch64-linux-gnu: the cross
# toolchain's older libc there with the multiarch libraries' newer one hangs in pthread_create.
set(SG_QEMU_CPU "" CACHE STRING "qemu -cpu for the emulated tests (empty: qemu's default)")
if(SG_QEMU_CPU)
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L / -cpu ${SG_QEMU_CPU})
else()
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /)
endif()
