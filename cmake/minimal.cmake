# SG_MINIMAL=ON (see CMakeLists.txt): the project without the server, for the aarch64 / armhf cross
# builds scripts/test-arm.sh runs under qemu. SG_COMPONENTS picks the parts (each needs the target's
# -dev packages named here, and fails the configure without them):
#   nn      libsgnn: src/base, src/nn, src/models (not CLIP) and the mel front end
#           (jansson, zlib, libunistring)
#   media   libsgmedia: src/media (audio and image codecs, resampling, preprocessing), CLIP and the
#           Silero VAD backend (+ libturbojpeg, libpng, libsamplerate, libsndfile, libvorbis,
#           libogg, libopus); needs nn
#   client  libsgclient, as the full build makes it (cmake/sgclient.cmake; + libcurl); needs media
# tests/CMakeLists.txt says which tests each component brings. The server, the agent, OCR, TTS and
# the Redis store are not built (libmicrohttpd, tesseract, flite, hiredis for the target are not
# needed): the client tests that talk to a server start the host's (SG_HOST_EDGE_BIN).
set(SG_COMPONENTS "nn;media;client" CACHE STRING "SG_MINIMAL: the parts built (nn, media, client)")
set(SG_HOST_EDGE_BIN "" CACHE FILEPATH
  "SG_MINIMAL: a native sg-edge the client tests start (empty: those tests are not built)")
foreach(c ${SG_COMPONENTS})
  if(NOT c MATCHES "^(nn|media|client)$")
    message(FATAL_ERROR "SG_COMPONENTS: unknown component '${c}' (nn, media, client)")
  endif()
endforeach()
if("client" IN_LIST SG_COMPONENTS AND NOT "media" IN_LIST SG_COMPONENTS)
  message(FATAL_ERROR "SG_COMPONENTS: client needs media")
endif()
if("media" IN_LIST SG_COMPONENTS AND NOT "nn" IN_LIST SG_COMPONENTS)
  message(FATAL_ERROR "SG_COMPONENTS: media needs nn")
endif()

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
find_path(UNISTRING_INCLUDE_DIR unistr.h REQUIRED)
find_library(UNISTRING_LIBRARY unistring REQUIRED)

file(GLOB SG_NN_SOURCES CONFIGURE_DEPENDS src/base/*.c src/nn/*.c src/models/*.c)
# CLIP's image preprocessing needs the image codecs (libturbojpeg, libpng): in sgmedia
list(FILTER SG_NN_SOURCES EXCLUDE REGEX "/models/clip\\.c$")
list(APPEND SG_NN_SOURCES src/media/mel.c)
sg_simd_filter(SG_NN_SOURCES)
add_library(sgnn STATIC ${SG_NN_SOURCES})
target_include_directories(sgnn PUBLIC src ${UNISTRING_INCLUDE_DIR})
target_compile_definitions(sgnn PUBLIC SG_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(sgnn PUBLIC PkgConfig::JANSSON PkgConfig::ZLIB ${UNISTRING_LIBRARY}
  Threads::Threads m)

if("media" IN_LIST SG_COMPONENTS)
  pkg_check_modules(TURBOJPEG REQUIRED IMPORTED_TARGET libturbojpeg)
  pkg_check_modules(PNG REQUIRED IMPORTED_TARGET libpng)
  pkg_check_modules(SAMPLERATE REQUIRED IMPORTED_TARGET samplerate)
  pkg_check_modules(SNDFILE REQUIRED IMPORTED_TARGET sndfile)
  pkg_check_modules(VORBIS REQUIRED IMPORTED_TARGET vorbis ogg)
  pkg_check_modules(OPUS REQUIRED IMPORTED_TARGET opus)
  file(GLOB SG_MEDIA_SOURCES CONFIGURE_DEPENDS src/media/*.c)
  list(FILTER SG_MEDIA_SOURCES EXCLUDE REGEX "/media/mel\\.c$")
  list(APPEND SG_MEDIA_SOURCES src/models/clip.c src/agent/vad_silero.c)
  sg_simd_filter(SG_MEDIA_SOURCES)
  add_library(sgmedia STATIC ${SG_MEDIA_SOURCES})
  target_link_libraries(sgmedia PUBLIC sgnn PkgConfig::TURBOJPEG PkgConfig::PNG
    PkgConfig::SAMPLERATE PkgConfig::SNDFILE PkgConfig::VORBIS PkgConfig::OPUS)
endif()

if("client" IN_LIST SG_COMPONENTS)
  include(cmake/sgclient.cmake)
  # the tokens libsgclient's local model makes, which scripts/local-llm-arm.sh compares with x86's
  add_executable(local_llm_tokens scripts/local_llm_tokens.c)
  target_link_libraries(local_llm_tokens PRIVATE sgclient)
endif()

if(SG_TESTS)
  enable_testing()
  add_subdirectory(tests)
endif()
