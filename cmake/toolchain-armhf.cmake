# Cross build for arm-linux-gnueabihf (Debian's crossbuild-essential-armhf); tests run under
# qemu-arm from qemu-user. SG_QEMU_CPU (e.g. max, cortex-a53) picks the
# emulated CPU; scripts/test-arm.sh sets it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
# find_library looks in /usr/lib/<arch>, where the multiarch packages put the target libraries
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
# multiarch -dev packages (:armhf) install their .pc files here
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/arm-linux-gnueabihf/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
# qemu's -L is / (the multiarch libc6:armhf loader in /lib), not /usr/arm-linux-gnueabihf: the cross
# toolchain's older libc there with the multiarch libraries' newer one hangs in pthread_create.
set(SG_QEMU_CPU "" CACHE STRING "qemu -cpu for the emulated tests (empty: qemu's default)")
if(SG_QEMU_CPU)
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm -L / -cpu ${SG_QEMU_CPU})
else()
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm -L /)
endif()
