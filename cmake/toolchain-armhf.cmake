# Cross build for arm-linux-gnueabihf (Debian's crossbuild-essential-armhf); tests run under
# qemu-arm from qemu-user with the target's sysroot /usr/arm-linux-gnueabihf. SG_QEMU_CPU (e.g. max, cortex-a53) picks the
# emulated CPU; scripts/test-arm.sh sets it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
# multiarch -dev packages (:armhf) install their .pc files here
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/arm-linux-gnueabihf/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
set(SG_QEMU_CPU "" CACHE STRING "qemu -cpu for the emulated tests (empty: qemu's default)")
if(SG_QEMU_CPU)
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm -L /usr/arm-linux-gnueabihf -cpu ${SG_QEMU_CPU})
else()
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm -L /usr/arm-linux-gnueabihf)
endif()
