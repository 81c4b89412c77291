#!/bin/sh
# cross/hot/test.sh: what cross/hot/link-gcc must hold, on a small C program (seconds; `make
# test-hot`, in `make test`'s host lane). Linked through the wrapper with a small list, the
# program must:
#   - have the listed functions first in .text, in the list's order, and the read-only data a
#     phase-1 or phase-2 function reads in .rodata1 (other data stays in .rodata);
#   - run exactly as the same program linked plainly; --gc-sections still drops unused code and
#     the code does not grow;
# and the wrapper must link plainly, never fail or hang, when: readelf is missing, objcopy fails,
# TMPDIR is missing, its directory is on PATH, gcc is told -fuse-ld=lld then -fuse-ld=bfd; it must
# place the functions of a list with CRLF line ends, a function whose name has `.` and `$`, and
# work with spaces and a comma in the paths and with two links at once. A static link also places
# the C library's hot members (.text.c_hot), but not when the link has a linker script of its
# own or a dependency file. For the ARM cross gcc, if installed (and qemu-arm, to run it), the
# same first checks.
# Env: EN_HOT_WRAPPER (the wrapper to test; default link-gcc beside this script).
set -eu
here=$(cd "$(dirname "$0")" && pwd -P)
wrapper=${EN_HOT_WRAPPER:-$here/link-gcc}
sh=$(command -v sh)
# Everything in a directory whose name has a space and a comma.
top=$(mktemp -d "${TMPDIR:-/tmp}/en-hot-test.XXXXXX")
trap 'rm -rf "$top"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
t="$top/a b,c"
mkdir -p "$t/tmp" "$t/bin"
failed=0
fail() {
    echo "cross/hot/test.sh: FAIL: $*" >&2
    failed=$((failed + 1))
}
ok() { echo "cross/hot/test.sh: ok: $*"; }

cat > "$t/p.c" <<'EOF'
#include <stdio.h>
#include <string.h>
static const int table_a[64] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const int table_b[64] = {11, 12, 13};
static const int table_c[64] = {21, 22, 23};
static const char *const names[] = {"alpha", "beta", "gamma"};
__attribute__((noinline)) int cold_one(int x) { return table_b[x & 63] * 3; }
__attribute__((noinline)) int hot_two(int x) { return table_a[x & 63] + (int)strlen(names[x % 3]); }
__attribute__((noinline)) int hot_one(int x) { return hot_two(x) * 2; }
__attribute__((noinline)) int later(int x) { return table_c[x & 63] - 1; }
__attribute__((noinline)) int unused_fn(int x) { return x * 77; }
__attribute__((noinline)) int odd(int x) __asm__("odd.name$1");
int odd(int x) { return x + 5; }
int main(int argc, char **argv) {
    (void)argv;
    printf("%d %d %d %d\n", hot_one(argc), cold_one(argc), later(argc), odd(argc));
    return 0;
}
EOF
# `# phase 3`: later's table is not data of phases 1 and 2; it stays in .rodata.
printf '# phase 1\nhot_one\nodd.name$1\nhot_two\nmain\nnot_in_the_program\n# phase 3\nlater\n' > "$t/list"
printf '# phase 1\r\nhot_one\r\nodd.name$1  \r\n\r\nhot_two\r\nmain\r\n# phase 3\r\nlater\r\n' > "$t/list.crlf"

# layout CC OUT LABEL: the checks on a linked program
layout() {
    out=$2
    label=$3
    nm -n "$out" > "$t/nm" 2>/dev/null || { fail "$label: nm $out"; return; }
    order=$(awk '$2 ~ /^[Tt]$/ { print $3 }' "$t/nm" |
        grep -x -e hot_one -e 'odd.name$1' -e hot_two -e main -e later -e cold_one | tr '\n' ' ')
    case $order in
    "hot_one odd.name\$1 hot_two main "*) ok "$label: listed functions first, in order" ;;
    *) fail "$label: function order is '$order', wanted hot_one odd.name\$1 hot_two main first" ;;
    esac
    # .rodata1's range; table_a (read by hot_two) in it, table_b and table_c not
    set -- $(readelf -SW "$out" | sed -n 's/^ *\[ *[0-9]*\] \.rodata1 *PROGBITS *\([0-9a-f]*\) [0-9a-f]* \([0-9a-f]*\) .*/\1 \2/p')
    if [ $# -ne 2 ]; then
        fail "$label: no .rodata1"
        return
    fi
    lo=$((0x$1))
    hi=$((lo + 0x$2))
    for v in table_a table_b table_c; do
        a=$(awk -v s=$v '$3 == s { print $1 }' "$t/nm")
        [ -n "$a" ] || { fail "$label: no symbol $v"; continue; }
        a=$((0x$a))
        in=no
        [ $a -ge $lo ] && [ $a -lt $hi ] && in=yes
        want=no
        [ $v = table_a ] && want=yes
        [ $in = $want ] || fail "$label: $v in .rodata1: $in, wanted $want"
    done
    ok "$label: .rodata1 checked"
}

# same RUN A B LABEL: the two programs print the same
same() {
    ra=$($1 "$2" x y 2>&1) || true
    rb=$($1 "$3" x y 2>&1) || true
    if [ -n "$ra" ] && [ "$ra" = "$rb" ]; then ok "$4: runs as the plain link ($ra)"; else fail "$4: plain '$ra', wrapped '$rb'"; fi
}

# text SIZE of a program
text() { size "$1" | awk 'NR == 2 { print $1 }'; }

# The host's gcc.
cc -O1 -ffunction-sections -fdata-sections -c "$t/p.c" -o "$t/p.o"
cc "$t/p.o" -o "$t/plain" -Wl,--gc-sections
hot() { EN_HOT_CC=${EN_HOT_CC:-cc} EN_HOT_LIST=${EN_HOT_LIST:-$t/list} TMPDIR=${TMPDIR_HOT:-$t/tmp} "$sh" "$wrapper" "$@"; }
if hot "$t/p.o" -o "$t/hot" -Wl,--gc-sections; then
    layout cc "$t/hot" host
    same "" "$t/plain" "$t/hot" host
    grep -q unused_fn "$t/nm" && fail "host: --gc-sections kept unused_fn"
    [ "$(text "$t/hot")" -le $(($(text "$t/plain") + 64)) ] ||
        fail "host: code grew: $(text "$t/plain") -> $(text "$t/hot")"
else
    fail "host: the wrapped link failed"
fi
[ -z "$(ls -A "$t/tmp")" ] || fail "host: temporary files left in TMPDIR: $(ls "$t/tmp")"

if EN_HOT_LIST=$t/list.crlf hot "$t/p.o" -o "$t/crlf" -Wl,--gc-sections; then
    layout cc "$t/crlf" "list with CRLF"
else
    fail "list with CRLF: the link failed"
fi

# c_range OUT SECTION: "lo hi" of an output section, or nothing
c_range() {
    readelf -SW "$1" | awk -v s="$2" '{ sub(/^ *\[ *[0-9]+\] /, "") } $1 == s { print $3, $5 }'
}
# c_in OUT SECTION SYMBOL-REGEX: prints yes if each symbol matching lies in SECTION, no if one
# does not, none if none matches
c_in() {
    set -- $(c_range "$1" "$2") "$1" "$3"
    if [ $# -ne 4 ]; then echo none; return; fi
    nm "$3" | awk -v lo=$((0x$1)) -v n=$((0x$2)) -v re="$4" '
        function hex(h,  i, v) { v = 0; h = tolower(h); for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
        $3 ~ re { a = hex($1); seen = 1; if (a < lo || a >= lo + n) bad = 1 }
        END { print (!seen ? "none" : bad ? "no" : "yes") }'
}
# A static link (glibc, as the armv7 build): the C library's members that define a listed
# phase-1 or phase-2 function (printf), with all the variants of an IFUNC one of which is listed
# (__strlen_sse2 brings __strlen_avx2, __strlen_evex, ...),
# and the start-up code (_start) lie in .text.c_hot, before .text; a phase-3 one (exit) does not.
# A dynamic link gets no such section.
printf '# phase 1\nhot_one\nmain\nprintf\n__vfprintf_internal\n__strlen_sse2\n# phase 3\nexit\n' > "$t/list.c"
if [ -f "$(cc -print-file-name=libc.a)" ]; then
    cc -static "$t/p.o" -o "$t/static.plain" -Wl,--gc-sections
    if EN_HOT_LIST=$t/list.c hot -static "$t/p.o" -o "$t/static.hot" -Wl,--gc-sections; then
        same "" "$t/static.plain" "$t/static.hot" "static glibc"
        for want in "printf yes" "_start yes" "exit no" "hot_one no"; do
            set -- $want
            got=$(c_in "$t/static.hot" .text.c_hot "^$1\$")
            [ "$got" = "$2" ] || fail "static glibc: $1 in .text.c_hot: $got, wanted $2"
        done
        if [ "$(uname -m)" = x86_64 ]; then
            got=$(c_in "$t/static.hot" .text.c_hot '^__strlen_(sse2|avx2|evex)$')
            [ "$got" = yes ] || fail "static glibc: strlen's variants in .text.c_hot: $got"
        fi
        [ -n "$(c_range "$t/static.hot" .rodata.c_hot)" ] || fail "static glibc: no .rodata.c_hot"
        ok "static glibc: the C library's hot members first"
    else
        fail "static glibc: the wrapped link failed"
    fi
    [ -z "$(c_range "$t/hot" .text.c_hot)" ] || fail "dynamic link: a .text.c_hot section"
    # A build with a linker script or a dependency file of its own gets no C placement (its
    # script would be edited; the dependency file would name a deleted script).
    # (-Xlinker: the directory's name has a comma)
    for own in "-Xlinker --dependency-file=$t/dep.d" "-Wl,-Ttext-segment=0x800000" "-T $t/none.ld"; do
        set -f
        set -- $own
        set +f
        [ "$1" = -T ] && set -- -T "${own#-T }"
        [ "$1" = -Xlinker ] && set -- -Xlinker "${own#-Xlinker }"
        [ -f "$t/none.ld" ] || ld --verbose | sed -n '/^=====/,/^=====/p' | sed '1d;$d' > "$t/none.ld"
        if EN_HOT_LIST=$t/list.c hot -static "$t/p.o" -o "$t/static.own" "$@"; then
            [ -z "$(c_range "$t/static.own" .text.c_hot)" ] || fail "static glibc, $own: a .text.c_hot section"
        else
            fail "static glibc, $own: the link failed"
        fi
    done
    ! grep -q "en-hot\." "$t/dep.d" 2>/dev/null || fail "static glibc: the dependency file names the wrapper's files"
    # A library directory with a blank (nm's output is parsed by the archive's path), and a
    # TMPDIR whose name holds "crtbegin" (only the start-up files themselves go first).
    mkdir -p "$t/sp ace" "$t/crtbegin-tmp"
    cp "$(cc -print-file-name=libc.a)" "$t/sp ace/"
    if EN_HOT_LIST=$t/list.c TMPDIR_HOT=$t/crtbegin-tmp hot -static "$t/p.o" -o "$t/static.sp" "-L$t/sp ace"; then
        for want in "printf yes" "hot_one no"; do
            set -- $want
            got=$(c_in "$t/static.sp" .text.c_hot "^$1\$")
            [ "$got" = "$2" ] || fail "static glibc, -L with a blank, TMPDIR crtbegin-tmp: $1 in .text.c_hot: $got, wanted $2"
        done
    else
        fail "static glibc, -L with a blank: the link failed"
    fi
    # A link the script breaks (a build's own linker script, here a driver that refuses -T) is
    # made again without it.
    printf '#!/bin/sh\nfor a; do [ "$a" = -T ] && { echo "no -T here" >&2; exit 1; }; done\nexec cc "$@"\n' > "$t/no-t-cc"
    chmod +x "$t/no-t-cc"
    if EN_HOT_CC=$t/no-t-cc EN_HOT_REPORT=$t/rep.t EN_HOT_LIST=$t/list.c hot -static "$t/p.o" -o "$t/static.retry" \
        -Wl,--gc-sections 2> "$t/retry.err"; then
        same "" "$t/static.plain" "$t/static.retry" "static glibc, script refused"
        grep -q "linked again without it" "$t/rep.t" || fail "static glibc, script refused: not reported"
        ! grep -q "no -T here" "$t/retry.err" || fail "static glibc, script refused: the first link's error shown"
    else
        fail "static glibc, script refused: the link failed"
    fi
fi

# The arguments in an @file, as rustc passes them when the command line is too long (one per
# line, blanks escaped with a backslash): the same layout, passed on in a file again.
mkdir "$t/o dir"
cp "$t/p.o" "$t/o dir/p o.o"
printf '%s\n' "$t/o dir/p o.o" -o "$t/rsp out" -Wl,--gc-sections | sed 's/[\\ ]/\\&/g' > "$t/link.rsp"
if hot "@$t/link.rsp"; then
    layout cc "$t/rsp out" "arguments in an @file"
else
    fail "arguments in an @file: the link failed"
fi

# A translated readelf (where binutils' French messages are installed): the same layout.
if LANGUAGE=fr LANG=C.UTF-8 hot "$t/p.o" -o "$t/fr" -Wl,--gc-sections; then
    layout cc "$t/fr" "LANGUAGE=fr"
else
    fail "LANGUAGE=fr: the link failed"
fi

# lld (rustc's own, through gcc): the order goes to it as a symbol ordering file, whose path
# (in TMPDIR, with a comma) must reach it whole. Data is not moved there.
gcc_ld=$(rustc --print sysroot 2>/dev/null)/lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld
if [ -x "$gcc_ld/ld.lld" ] && [ "$(uname -m)" = x86_64 ]; then
    if hot "$t/p.o" -o "$t/lld" -Wl,--gc-sections "-B$gcc_ld" -fuse-ld=lld; then
        order=$(nm -n "$t/lld" | awk '$2 ~ /^[Tt]$/ { print $3 }' |
            grep -x -e hot_one -e 'odd.name$1' -e hot_two -e main -e cold_one | tr '\n' ' ')
        case $order in
        "hot_one odd.name\$1 hot_two main "*) ok "lld: listed functions first, in order" ;;
        *) fail "lld: function order is '$order'" ;;
        esac
        same "" "$t/plain" "$t/lld" lld
    else
        fail "lld: the link failed"
    fi
fi

# A debug or test build's link (more than two Rust objects): linked as it is, nothing left in
# TMPDIR.
cp "$t/p.o" "$t/a.rcgu.o"
printf 'int b_fn(void) { return 1; }\n' > "$t/b.c"
printf 'int c_fn(void) { return 2; }\n' > "$t/c.c"
cc -c "$t/b.c" -o "$t/b.rcgu.o"
cc -c "$t/c.c" -o "$t/c.rcgu.o"
mkdir "$t/tmp3"
if TMPDIR_HOT=$t/tmp3 hot "$t/a.rcgu.o" "$t/b.rcgu.o" "$t/c.rcgu.o" -o "$t/debug" -Wl,--gc-sections; then
    [ -z "$(ls -A "$t/tmp3")" ] && ok "debug link: nothing left in TMPDIR" ||
        fail "debug link: left in TMPDIR: $(ls "$t/tmp3")"
else
    fail "debug link: failed"
fi

# Two links at once, into the same TMPDIR.
hot "$t/p.o" -o "$t/two1" -Wl,--gc-sections &
p1=$!
hot "$t/p.o" -o "$t/two2" -Wl,--gc-sections &
p2=$!
if wait $p1 && wait $p2 && cmp -s "$t/two1" "$t/hot" && cmp -s "$t/two2" "$t/hot"; then
    ok "two links at once: both as one alone"
else
    fail "two links at once"
fi

# plain LABEL OUT: the wrapper's output is the plain link's, byte for byte
plain() {
    if [ -f "$2" ] && cmp -s "$t/plain" "$2"; then ok "$1: linked plainly"; else fail "$1: not the plain link"; fi
}
# No readelf on PATH: a directory of links to everything else the link needs.
for p in cc gcc collect2 ld ld.bfd as objcopy c++filt sed awk paste cut sort mktemp rm dirname basename cat; do
    w=$(command -v $p 2>/dev/null) && ln -s "$w" "$t/bin/$p"
done
PATH=$t/bin hot "$t/p.o" -o "$t/noreadelf" -Wl,--gc-sections || true
plain "readelf missing" "$t/noreadelf"
# objcopy fails (a driver that names a failing objcopy).
printf '#!/bin/sh\n[ "$1" = -print-prog-name=objcopy ] && { echo /bin/false; exit 0; }\nexec cc "$@"\n' > "$t/badcc"
chmod +x "$t/badcc"
EN_HOT_CC=$t/badcc hot "$t/p.o" -o "$t/badobjcopy" -Wl,--gc-sections || true
plain "objcopy failing" "$t/badobjcopy"
TMPDIR_HOT=$t/missing hot "$t/p.o" -o "$t/notmp" -Wl,--gc-sections || fail "TMPDIR missing: the link failed"
[ -f "$t/notmp" ] && ok "TMPDIR missing: linked"
# A report file that cannot be written, a list that is a directory: links all the same.
EN_HOT_REPORT=$t/missing/hot.txt hot "$t/p.o" -o "$t/noreport" -Wl,--gc-sections 2>/dev/null &&
    ok "EN_HOT_REPORT unwritable: linked" || fail "EN_HOT_REPORT unwritable: the link failed"
EN_HOT_LIST=$t hot "$t/p.o" -o "$t/listdir" -Wl,--gc-sections || true
plain "EN_HOT_LIST a directory" "$t/listdir"
# gcc obeys the last -fuse-ld=: no lld option may reach GNU ld.
hot "$t/p.o" -o "$t/bfd" -Wl,--gc-sections -fuse-ld=lld -fuse-ld=bfd || fail "-fuse-ld=lld -fuse-ld=bfd: the link failed"
[ -f "$t/bfd" ] && ok "-fuse-ld=lld then bfd: linked"
# The wrapper's directory on PATH: it must not call itself (timeout: a recursion hangs).
ln -s "$wrapper" "$t/bin/x86_64-linux-gnu-gcc"
if command -v x86_64-linux-gnu-gcc >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then
    if PATH=$t/bin:$PATH EN_HOT_LIST=$t/list TMPDIR=$t/tmp timeout 60 "$t/bin/x86_64-linux-gnu-gcc" \
        "$t/p.o" -o "$t/onpath" -Wl,--gc-sections; then
        layout cc "$t/onpath" "wrapper on PATH"
    else
        fail "wrapper on PATH: the link failed or hung"
    fi
fi

# Called through a link in another directory, the wrapper still finds its own list.
if [ -z "${EN_HOT_WRAPPER:-}" ] && [ -f "$here/functions.txt" ]; then
    mkdir "$t/bin3"
    ln -s "$wrapper" "$t/bin3/cc"
    EN_HOT_REPORT=$t/rep3 TMPDIR=$t/tmp "$t/bin3/cc" "$t/p.o" -o "$t/linked" -Wl,--gc-sections || true
    if grep -q ' of [1-9][0-9]* listed' "$t/rep3" 2>/dev/null; then
        ok "through a link elsewhere: cross/hot/functions.txt read"
    else
        fail "through a link elsewhere: the list was not read"
    fi
fi

# The ARM cross gcc (static, as the handset builds), run under qemu-arm.
arm=arm-linux-gnueabihf-gcc
if command -v $arm >/dev/null 2>&1; then
    $arm -O1 -ffunction-sections -fdata-sections -c "$t/p.c" -o "$t/arm.o"
    $arm -static "$t/arm.o" -o "$t/arm.plain" -Wl,--gc-sections
    if EN_HOT_CC=$arm hot -static "$t/arm.o" -o "$t/arm.hot" -Wl,--gc-sections; then
        layout $arm "$t/arm.hot" armhf
        if EN_HOT_CC=$arm EN_HOT_LIST=$t/list.c hot -static "$t/arm.o" -o "$t/arm.c" -Wl,--gc-sections; then
            for want in "printf yes" "_start yes" "exit no"; do
                set -- $want
                got=$(c_in "$t/arm.c" .text.c_hot "^$1\$")
                [ "$got" = "$2" ] || fail "armhf static: $1 in .text.c_hot: $got, wanted $2"
            done
            ok "armhf static: the C library's hot members first"
        else
            fail "armhf static: the wrapped link failed"
        fi
        if command -v qemu-arm >/dev/null 2>&1; then
            same qemu-arm "$t/arm.plain" "$t/arm.hot" armhf
        else
            echo "cross/hot/test.sh: qemu-arm missing: the ARM program not run"
        fi
    else
        fail "armhf: the wrapped link failed"
    fi
    # A cross gcc that knows no objcopy of its own (binutils only on PATH): the target's
    # objcopy from PATH, not the host's (which cannot read ARM objects).
    mkdir "$t/bin2"
    printf '#!/bin/sh\n[ "$1" = -print-prog-name=objcopy ] && { echo objcopy; exit 0; }\nexec %s "$@"\n' \
        "$(command -v $arm)" > "$t/bin2/$arm"
    chmod +x "$t/bin2/$arm"
    if command -v arm-linux-gnueabihf-objcopy >/dev/null 2>&1 &&
        PATH=$t/bin2:$PATH EN_HOT_CC=$arm hot -static "$t/arm.o" -o "$t/arm.path" -Wl,--gc-sections; then
        layout $arm "$t/arm.path" "armhf, objcopy from PATH"
    fi
else
    echo "cross/hot/test.sh: $arm missing: ARM checks skipped"
fi

# A compile through the wrapper (cc-rs uses the target's linker as its compiler when no CC is
# set): the object after -o is the output, written anew, never an old one rewritten in its place.
cp "$t/p.o" "$t/out.o"
printf 'int fresh_fn(void) { return 7; }\n' > "$t/fresh.c"
if hot -c "$t/fresh.c" -o "$t/out.o" && nm "$t/out.o" | grep -q fresh_fn; then
    ok "a compile writes its own output"
else
    fail "a compile through the wrapper left the old object at its -o"
fi
if [ $failed -ne 0 ]; then
    echo "cross/hot/test.sh: $failed check(s) failed" >&2
    exit 1
fi
echo "cross/hot/test.sh: all passed"
