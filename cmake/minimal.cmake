# SG_MINIMAL=ON (see CMakeLists.txt): libsgnn, the kernels and models without the server, media
# codecs or agent, and the tests that link against nothing more. Used by scripts/test-arm.sh for the
# aarch64 / armhf cross builds run under qemu; needs jansson, zlib and libunistring for the target.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
find_path(UNISTRING_INCLUDE_DIR unistr.h REQUIRED)
find_library(UNISTRING_LIBRARY unistring REQUIRED)

file(GLOB SG_NN_SOURCES CONFIGURE_DEPENDS src/base/*.c src/nn/*.c src/models/*.c)
# CLIP's image preprocessing needs the image codecs (libturbojpeg, libpng): not in this subset
list(FILTER SG_NN_SOURCES EXCLUDE REGEX "/models/clip\\.c$")
list(APPEND SG_NN_SOURCES src/media/mel.c)
sg_simd_filter(SG_NN_SOURCES)
add_library(sgnn STATIC ${SG_NN_SOURCES})
target_include_directories(sgnn PUBLIC src ${UNISTRING_INCLUDE_DIR})
target_compile_definitions(sgnn PUBLIC SG_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(sgnn PUBLIC PkgConfig::JANSSON PkgConfig::ZLIB ${UNISTRING_LIBRARY}
  Threads::Threads m)

if(SG_TESTS)
  enable_testing()
  # run from the project root, as tests/CMakeLists.txt does, so ../shared/... resolves
  set(SG_MINIMAL_TESTS test_nn test_snn test_safetensors test_ptfile test_gpt2_tokenizer
    test_clip_tokenizer)
  foreach(name ${SG_MINIMAL_TESTS})
    add_executable(${name} tests/${name}.c)
    target_link_libraries(${name} PRIVATE sgnn)
    if(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
      # Debian 12's aarch64 gcc 12 stops with an internal compiler error (vect_transform_reduction)
      # vectorising a reduction in test_nn.c's check_spike_shape: the tests do without vectorising
      target_compile_options(${name} PRIVATE -fno-tree-vectorize)
    endif()
    add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    # emulated runs are slow: no wall-clock gate tighter than the main build's
    set_tests_properties(${name} PROPERTIES TIMEOUT 1200)
  endforeach()
endif()
