# libsgclient, the phone side (issue 6): included by CMakeLists.txt (the full build) and by
# cmake/minimal.cmake (the SG_MINIMAL cross builds, component "client"). Expects PkgConfig::TURBOJPEG,
# PkgConfig::JANSSON, PkgConfig::SNDFILE, PkgConfig::ZLIB, UNISTRING_INCLUDE_DIR / UNISTRING_LIBRARY,
# Threads and sg_simd_filter from the includer.
#
# sgclient_policy is the pure policy code (libc + libm only; the server's keyframe gate
# src/agent/keyframe.c and its thumbnail src/media/thumb.c are compiled in as well, so client and
# server run the same rule on the same numbers), which an Android NDK / iOS build can take alone
# (header client/sgclient_policy.h); sgclient adds TurboJPEG encoding, Opus/FLAC audio chunks
# (libsndfile) and the libcurl HTTP client (header client/sgclient.h).
pkg_check_modules(SGC_CURL REQUIRED IMPORTED_TARGET libcurl)
set(SGCLIENT_POLICY_SOURCES client/status.c client/rate.c client/frame.c client/upload_queue.c
  client/retry.c client/stats.c client/y4m.c client/budget.c client/telemetry.c
  client/sse.c
  src/agent/keyframe.c
  src/media/thumb.c)
# src/media/sfmem.c (libsndfile's virtual I/O over memory) is the server's, compiled in here too
# src/base/base64.c and error.c (the server's strict base64 and its error type) are compiled in too
set(SGCLIENT_IO_SOURCES client/jpeg.c client/http.c client/audio_codec.c client/answer.c
  src/media/sfmem.c src/base/base64.c src/base/error.c)
# The on-device language model (client/local_llm.c, issue 16): the server's SNN student and the
# nn/ kernels it runs on, compiled in from src/ (the same code, the same tokens); libunistring (the
# tokenizer) and zlib (student.pt is a zip) come with it. Offline answers (client/offline.c) use the
# server's rule-based responder.
set(SGCLIENT_LLM_SOURCES client/local_llm.c client/offline.c src/agent/responder.c src/base/phrase.c
  src/models/snn.c src/models/snn_load.c src/models/snn_quant.c
  src/models/gpt2_tokenizer.c src/models/bpe_common.c
  src/nn/arena.c src/nn/cpu.c src/nn/linear.c src/nn/ops.c src/nn/pickle.c src/nn/pool.c
  src/nn/ptfile.c src/nn/safetensors.c src/nn/shape.c src/nn/spike.c src/nn/vec.c
  src/nn/weights.c src/nn/zip.c
  src/base/json.c src/base/file.c src/base/utf8.c src/base/clock.c)
# Each kernel file's SIMD twins come with it (src/nn/linear.c: linear_avx2.c, linear_avx512.c,
# linear_neon.c, linear_dotprod.c, ...), this architecture's only (sg_simd_filter; run-time dispatch
# as in sgcore). A glob, so a new twin (say vec_neon.c) is picked up without editing this list.
set(SGCLIENT_SIMD_SOURCES)
foreach(src ${SGCLIENT_LLM_SOURCES})
  if(src MATCHES "^src/nn/(.*)\\.c$")
    file(GLOB twins CONFIGURE_DEPENDS src/nn/${CMAKE_MATCH_1}_*.c)
    list(FILTER twins INCLUDE REGEX "_(avx2|avx512|neon|dotprod)\\.c$")
    sg_simd_filter(twins)
    list(APPEND SGCLIENT_SIMD_SOURCES ${twins})
  endif()
endforeach()
list(APPEND SGCLIENT_LLM_SOURCES ${SGCLIENT_SIMD_SOURCES})
list(APPEND SGCLIENT_IO_SOURCES ${SGCLIENT_LLM_SOURCES})
set(SGCLIENT_IO_LIBS PkgConfig::SGC_CURL PkgConfig::TURBOJPEG PkgConfig::JANSSON
  PkgConfig::SNDFILE PkgConfig::ZLIB ${UNISTRING_LIBRARY} Threads::Threads m)
add_library(sgclient_policy STATIC ${SGCLIENT_POLICY_SOURCES})
target_include_directories(sgclient_policy PUBLIC client PRIVATE src)
target_link_libraries(sgclient_policy PUBLIC m)
add_library(sgclient STATIC ${SGCLIENT_IO_SOURCES})
target_include_directories(sgclient PRIVATE src ${UNISTRING_INCLUDE_DIR})
target_link_libraries(sgclient PUBLIC sgclient_policy ${SGCLIENT_IO_LIBS})
install(TARGETS sgclient sgclient_policy ARCHIVE DESTINATION lib)
install(FILES client/sgclient_policy.h client/sgclient.h DESTINATION include)
# libsgclient.so, what an Android app loads (issue 16 wraps it in JNI): the same sources with
# hidden visibility, so only the SGCLIENT_API functions are exported; versioned from the header.
# Linked with --no-undefined: a function the library calls but does not contain (a SIMD twin left
# out, say) fails the build here, not the app that loads it.
option(SG_CLIENT_SHARED "Also build libsgclient.so" OFF)
if(SG_CLIENT_SHARED)
  file(STRINGS client/sgclient_policy.h SGCLIENT_VERSION_LINE REGEX "^#define SGCLIENT_VERSION \"")
  string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" SGCLIENT_VERSION "${SGCLIENT_VERSION_LINE}")
  string(REGEX MATCH "^[0-9]+" SGCLIENT_SOVERSION "${SGCLIENT_VERSION}")
  add_library(sgclient_shared SHARED ${SGCLIENT_POLICY_SOURCES} ${SGCLIENT_IO_SOURCES})
  target_include_directories(sgclient_shared PUBLIC client PRIVATE src ${UNISTRING_INCLUDE_DIR})
  target_compile_definitions(sgclient_shared PRIVATE SGCLIENT_SHARED_BUILD)
  target_link_libraries(sgclient_shared PRIVATE ${SGCLIENT_IO_LIBS})
  target_link_options(sgclient_shared PRIVATE -Wl,--no-undefined)
  set_target_properties(sgclient_shared PROPERTIES OUTPUT_NAME sgclient C_VISIBILITY_PRESET hidden
    VERSION ${SGCLIENT_VERSION} SOVERSION ${SGCLIENT_SOVERSION})
  install(TARGETS sgclient_shared LIBRARY DESTINATION lib)
endif()
