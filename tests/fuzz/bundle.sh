#!/bin/sh
# tests/fuzz/bundle.sh OUT.tar.xz -- packs what `make fuzz` built into one
# tarball that runs the campaign on any x86-64 Linux, with no compiler or
# libraries installed there:
#
#   mkdir b && tar -C b -xJf OUT.tar.xz && cd b && sh run.sh SECONDS [JOBS]
#
# Every target runs under the bundled dynamic loader with only the bundled
# libraries (libc included), so the host's glibc version does not matter.
# addr2line comes along (the same way) for ASan to symbolize with: the
# leak suppressions in lsan.supp name functions, and without a symbolizer
# libconfig's known leaks would be reported as findings.
#
# Run from the repository root, after make fuzz.
set -eu

out=${1:?usage: tests/fuzz/bundle.sh OUT.tar.xz}
bins=${FUZZ_BIN_DIR:-objs/fuzz}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac

targets=$(ls "$bins" | sed -n 's/^fuzz_[A-Za-z0-9_]*$/&/p')
[ -n "$targets" ] || { echo "$0: no fuzz targets in $bins (make fuzz)" >&2; exit 1; }
a2l=$(command -v addr2line) || { echo "$0: addr2line (binutils) is needed" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wh-fuzz-bundle.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/lib" "$tmp/tools" "$tmp/tests/fuzz"

for t in $targets; do cp "$bins/$t" "$tmp/bin/"; done
cp "$a2l" "$tmp/tools/addr2line.bin"

# every library ldd names, under its soname; the loader under its own name
for f in "$tmp"/bin/* "$tmp/tools/addr2line.bin"; do
    ldd "$f"
done | awk '
    $2 == "=>" && $3 ~ /^\// { print $1, $3; next }
    $1 ~ /^\/.*ld-linux/ { n = $1; sub(/.*\//, "", n); print n, $1 }
' | sort -u | while read -r name path; do
    cp -L "$path" "$tmp/lib/$name"
done
[ -f "$tmp/lib/ld-linux-x86-64.so.2" ] || { echo "$0: no ld-linux-x86-64.so.2 in ldd's output" >&2; exit 1; }

# ASan starts the symbolizer by path and picks its protocol by the name
cat > "$tmp/tools/addr2line" <<'EOF'
#!/bin/sh
b=$(cd "$(dirname "$0")/.." && pwd)
exec "$b/lib/ld-linux-x86-64.so.2" --library-path "$b/lib" "$b/tools/addr2line.bin" "$@"
EOF
chmod +x "$tmp/tools/addr2line"

cp tests/lsan.supp "$tmp/tests/"
cp tests/fuzz/campaign.sh tests/fuzz/weights "$tmp/tests/fuzz/"
for f in tests/fuzz/*.dict tests/fuzz/*.options; do
    [ -f "$f" ] && cp "$f" "$tmp/tests/fuzz/"
done
cp -R tests/fuzz/corpus "$tmp/tests/fuzz/"

cat > "$tmp/run.sh" <<'EOF'
#!/bin/sh
# run.sh SECONDS [JOBS] -- the wharf fuzz campaign: every target for SECONDS,
# JOBS processes at once (default: every core), then a table. Findings and
# logs: work/<target>/.
set -u
cd "$(dirname "$0")" || exit 1
b=$(pwd)
case $b in
*[[:space:]]*) echo "run.sh: the bundle's path may not contain blanks: $b" >&2; exit 1 ;;
esac
FUZZ_RUNNER="$b/lib/ld-linux-x86-64.so.2 --library-path $b/lib"
FUZZ_BIN_DIR=bin
FUZZ_WORK=work
ASAN_OPTIONS="external_symbolizer_path=$b/tools/addr2line:allow_addr2line=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export FUZZ_RUNNER FUZZ_BIN_DIR FUZZ_WORK ASAN_OPTIONS
exec sh tests/fuzz/campaign.sh "${1:-60}" ${2:+"$2"}
EOF

(cd "$tmp" && tar -cf - run.sh bin lib tools tests) | xz -6 > "$out"
echo "$out: $(du -k "$out" | cut -f1) KiB, $(echo $targets | wc -w) targets" >&2
