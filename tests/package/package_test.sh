#!/usr/bin/env bash
# package_test.sh BUILD_DIR CMAKE CC VERSION: attnc as a user gets it.
# Installs BUILD_DIR into a temporary prefix, moves the installed tree (the
# paths in it must follow), then
#   - builds project/ (find_package(attnc) + attnc_add_model) out of tree
#     against it, runs the program, and checks that changing the .attn file
#     or the weights file makes the model again;
#   - builds project/main.c with cc and pkg-config --cflags --libs attnrt
#     against objects made by the installed attnc, and runs it.
# CFLAGS (the sanitizers, in the ASan build) go to both builds.
set -uo pipefail
BUILD=$1 CMAKE=$2 CC=$3 VERSION=$4
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/attnc-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
# same WANT-FILE GOT-FILE WHAT
same() { diff -u "$1" "$2" >&2 || fail "$3: the output differs"; }

step "install into a temporary prefix, then move it"
"$CMAKE" --install "$BUILD" --prefix "$tmp/first" > "$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
mv "$tmp/first" "$tmp/root"
root=$tmp/root
for f in bin/attnc lib/libattnrt.a include/attnrt.h lib/cmake/attnc/attncConfig.cmake \
         lib/cmake/attnc/attncConfigVersion.cmake lib/cmake/attnc/attncTargets.cmake \
         lib/cmake/attnc/attncAddModel.cmake lib/pkgconfig/attnrt.pc; do
  [[ -f $root/$f ]] || fail "not installed: $f"
done
grep -rq "$tmp/first" "$root/lib/cmake" "$root/lib/pkgconfig" && fail "an installed file names the install prefix"

want() {   # want SCALE-LINE LIN-LINE: the program's expected output
  printf '%s\n' "m_scale: [$1]" "w_lin: [$2]" \
    "m_lin: parameter 'proj.weight' of model 'lin' is not bound (load a weights file or bind it)" > "$tmp/want.txt"
}

step "CMake: find_package(attnc) and attnc_add_model"
cp -r "$here/project" "$tmp/src"
"$CMAKE" -S "$tmp/src" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$root" -DCMAKE_C_COMPILER="$CC" \
  -DCMAKE_BUILD_TYPE=Release > "$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "configuring project/"; }
build() {
  "$CMAKE" --build "$tmp/build" > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "building project/ ($1)"; }
  "$tmp/build/app" > "$tmp/out.txt" || fail "app failed ($1)"
}
build "first build"
grep -q "attnc model.attn -> m_model.o" "$tmp/build.log" || { cat "$tmp/build.log"; fail "attnc did not run"; }
want "3, 3, 5, -1" "3.5, 6, 0.5, 1"
same "$tmp/want.txt" "$tmp/out.txt" "first build"
[[ -f $tmp/build/attnc/app/m_model.h && -f $tmp/build/attnc/app/w_lin.o ]] || fail "outputs not under attnc/app/"
build "nothing changed"
grep -q "attnc model.attn" "$tmp/build.log" && fail "attnc ran again though nothing changed"
# a changed model is compiled again
sed -i 's/x \* 2 + 1/x * 3 + 1/' "$tmp/src/model.attn"
build "model.attn changed"
want "4, 4, 7, -2" "3.5, 6, 0.5, 1"
same "$tmp/want.txt" "$tmp/out.txt" "after changing model.attn"
# and so is a model whose weights changed (the bias, the last 8 bytes, to 0)
w=$tmp/src/weights.safetensors
{ head -c -8 "$w"; printf '\0\0\0\0\0\0\0\0'; } > "$tmp/w.new" && mv "$tmp/w.new" "$w"
build "weights changed"
grep -q "attnc model.attn -> w_lin.o" "$tmp/build.log" || fail "w_lin.o was not made again after its weights changed"
grep -q "attnc model.attn -> m_model.o" "$tmp/build.log" && fail "m_model.o was made again, though it has no weights"
want "4, 4, 7, -2" "3, 7, 0, 2"
same "$tmp/want.txt" "$tmp/out.txt" "after changing weights.safetensors"

step "pkg-config attnrt"
command -v pkg-config > /dev/null || fail "pkg-config is not installed (setup.sh installs it)"
export PKG_CONFIG_PATH=$root/lib/pkgconfig
[[ $(pkg-config --modversion attnrt) == "$VERSION" ]] || fail "pkg-config --modversion attnrt: $(pkg-config --modversion attnrt), expected $VERSION"
pkg-config --static --libs attnrt | grep -q -- "-lattnrt -lm -lpthread" || fail "--static --libs lacks -lm -lpthread"
p=$here/project
mkdir "$tmp/pc"
"$root/bin/attnc" "$p/model.attn" -o "$tmp/pc/m_model.o" --prefix m_ || fail "installed attnc"
"$root/bin/attnc" "$p/model.attn" -o "$tmp/pc/w_lin.o" --model lin --weights "$p/weights.safetensors" --prefix w_ ||
  fail "installed attnc --weights"
cflags=()
read -r -a cflags <<< "${CFLAGS:-}" || true
for static in "" --static; do
  # shellcheck disable=SC2046
  "$CC" -std=c99 -Wall -Werror ${cflags[@]+"${cflags[@]}"} -I"$tmp/pc" "$p/main.c" "$tmp/pc/m_model.o" "$tmp/pc/w_lin.o" \
    $(pkg-config --cflags --libs $static attnrt) -o "$tmp/pc/app" || fail "cc with pkg-config --cflags --libs $static attnrt"
  "$tmp/pc/app" > "$tmp/out.txt" || fail "the pkg-config build failed to run"
  want "3, 3, 5, -1" "3.5, 6, 0.5, 1"
  same "$tmp/want.txt" "$tmp/out.txt" "pkg-config build $static"
done
echo "ok package"
