# shellcheck shell=sh
# Sourced (not run) by scripts/local-llm-arm.sh and bench/arm_insn_count.sh, from the repository's
# root: builds the model sources of libsgclient (client/local_llm.c and the sgcore files it
# compiles in, with each architecture's SIMD kernels and run-time dispatch, as CMake compiles them)
# with scripts/local_llm_tokens.c. The caller sets tmp (a scratch directory). armhf needs
# _FILE_OFFSET_BITS=64 (stat() of files with 64-bit inode numbers).
SRC="client/local_llm.c client/status.c src/models/snn.c src/models/snn_load.c src/models/snn_quant.c
  src/models/gpt2_tokenizer.c src/models/bpe_common.c src/nn/arena.c src/nn/cpu.c src/nn/linear.c
  src/nn/ops.c src/nn/pickle.c src/nn/pool.c src/nn/ptfile.c src/nn/safetensors.c src/nn/shape.c
  src/nn/spike.c src/nn/vec.c src/nn/weights.c src/nn/zip.c src/base/json.c src/base/file.c
  src/base/utf8.c src/base/clock.c src/base/error.c src/base/base64.c scripts/local_llm_tokens.c"
FLAGS="-std=c11 -O2 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DSG_VERSION=\"arm\" -Isrc -Iclient"
LIBS="-ljansson -lunistring -lz -lpthread -lm"
# build <out> <cc> <defines> then pairs of <SIMD file glob> <its flags>: writes $tmp/<out>
build() {
  out=$1 cc=$2 defs=$3
  shift 3
  mkdir -p "$tmp/$out.o"
  while [ $# -gt 0 ]; do
    for f in $1; do
      # shellcheck disable=SC2086
      $cc $FLAGS $defs $2 -c "$f" -o "$tmp/$out.o/$(basename "$f").o"
    done
    shift 2
  done
  # shellcheck disable=SC2086
  $cc $FLAGS $defs $SRC "$tmp/$out.o"/*.o -o "$tmp/$out" $LIBS
}
# the three binaries: $tmp/x86 (scalar, AVX2, AVX-512), $tmp/arm64 (scalar, NEON, SDOT), $tmp/armhf
# (scalar, NEON)
build_x86() {
  build x86 gcc "-DSG_X86=1" "src/nn/*_avx2.c" "-mavx2 -mfma -mf16c" \
    "src/nn/*_avx512.c" "-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c"
}
build_all() {
  build_x86
  build arm64 aarch64-linux-gnu-gcc "-DSG_ARM=1 -DSG_AARCH64=1" "src/nn/*_neon.c" "" \
    "src/nn/*_dotprod.c" "-march=armv8.2-a+dotprod"
  build armhf arm-linux-gnueabihf-gcc "-DSG_ARM=1" "src/nn/*_neon.c" "-mfpu=neon"
}
# the full-size (13.2 M-parameter, random) model: $tmp/full_f32 and its int8 file $tmp/full_q8
# (needs build/sg and ../shared/tokenizers/gpt2.tiktoken)
make_full_model() {
  python3 py/gen_snn_synthetic.py "$tmp/full_f32" ../shared/tokenizers/gpt2.tiktoken >/dev/null
  build/sg quantize --model "$tmp/full_f32" --out "$tmp/full_q8" >/dev/null
}
