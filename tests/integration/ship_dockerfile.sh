#!/bin/bash
# Lints the Dockerfile (no Docker engine runs on the build machines): parses its instructions
# and checks that the base images are Debian bookworm, every COPY source exists in the
# repository and is not excluded by .dockerignore, every COPY --from names an earlier stage,
# every apt package it installs (including BUILD_PKGS, read from scripts/install-deps.sh the
# way the Dockerfile reads it) exists in the apt lists, the runtime stage has a package for
# every shared library scalexd and scalex link against (readelf NEEDED -> dpkg -S), runs as a
# non-root user with a volume and a /healthz HEALTHCHECK, that the entry point passes
# subcommands through to the real scalexd, and that the DEMO=1 path works: the Dockerfile's
# own training command (fewer steps) makes a reference the entry point registers once.
set -euo pipefail
SRC=${SX_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=${SX_PYTHON:-/usr/bin/python3}
BUILD=${SX_BUILD_DIR:?run through ctest}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ship-docker-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- parse: one JSON line per instruction (stage index, keyword, flags, args) ----
"$PY" - "$SRC/Dockerfile" >"$WORK/instr.json" <<'PY'
import json, re, shlex, sys
KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
         "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
text = open(sys.argv[1]).read()
lines, cur = [], ""
for raw in text.split("\n"):
    s = raw.strip()
    if not cur and (not s or s.startswith("#")):
        continue
    if cur and s.startswith("#"):
        continue  # comment lines inside a continuation are dropped by Docker too
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    cur += s
    lines.append(cur)
    cur = ""
assert not cur, "Dockerfile ends inside a line continuation"
stage = -1
for l in lines:
    kw, _, rest = l.partition(" ")
    assert kw.upper() == kw and kw in KNOWN, "unknown instruction %r" % kw
    if kw == "FROM":
        stage += 1
    flags = {}
    args = rest.strip()
    if kw in ("COPY", "ADD", "HEALTHCHECK"):
        while args.startswith("--"):
            f, _, args = args.partition(" ")
            k, _, v = f[2:].partition("=")
            flags[k] = v
            args = args.strip()
    print(json.dumps({"stage": stage, "kw": kw, "flags": flags, "args": args}))
PY
"$PY" - "$WORK/instr.json" "$SRC" >"$WORK/lists" <<'PY' || fail "Dockerfile structure"
import fnmatch, json, os, shlex, sys
ins = [json.loads(l) for l in open(sys.argv[1])]
src = sys.argv[2]
ign = [l.strip() for l in open(os.path.join(src, ".dockerignore")) if l.strip() and not l.startswith("#")]
stages, names = {}, []
copies, apt = [], {}
for i in ins:
    if i["kw"] == "FROM":
        a = i["args"].split()
        assert a[0].startswith("debian:bookworm"), "base image %s is not Debian bookworm" % a[0]
        if len(a) == 3:
            assert a[1].upper() == "AS" and a[2] not in names, i
            names.append(a[2])
        else:
            names.append(str(i["stage"]))
    elif i["kw"] in ("COPY", "ADD"):
        parts = i["args"].split()
        assert len(parts) >= 2, i
        if "from" in i["flags"]:
            assert i["flags"]["from"] in names[:-1], "COPY --from=%s: no earlier stage" % i["flags"]["from"]
            continue
        for p in parts[:-1]:
            path = os.path.join(src, p)
            assert os.path.exists(path), "COPY source %s does not exist in the repository" % p
            for pat in ign:
                assert not fnmatch.fnmatch(p.rstrip("/"), pat) and not p.startswith(pat.rstrip("/") + "/"), \
                    "COPY source %s is excluded by .dockerignore (%s)" % (p, pat)
            copies.append(p)
    elif i["kw"] == "RUN" and "apt-get install" in i["args"]:
        for cmd in i["args"].split("&&"):
            w = cmd.split()
            if "install" not in w or "apt-get" not in w:
                continue
            assert "--no-install-recommends" in w, "apt-get install without --no-install-recommends"
            pk = [x for x in w[w.index("install") + 1:] if not x.startswith("-") and not x.startswith("$")]
            apt.setdefault(i["stage"], []).extend(pk)
        assert "rm -rf /var/lib/apt/lists" in i["args"], "apt lists left in a layer"
last = len(names) - 1
rt = [i for i in ins if i["stage"] == last]
kws = {i["kw"]: i for i in rt}
users = [i["args"] for i in rt if i["kw"] == "USER"]
assert users and users[-1] not in ("root", "0"), "the runtime stage runs as root"
assert "VOLUME" in kws and "/var/lib/scalexd" in kws["VOLUME"]["args"], "no data volume"
assert "HEALTHCHECK" in kws and "/healthz" in kws["HEALTHCHECK"]["args"], "no /healthz HEALTHCHECK"
assert "EXPOSE" in kws and "ENTRYPOINT" in kws, "EXPOSE/ENTRYPOINT"
assert any(i["kw"] == "ARG" and i["args"].startswith("DEMO") for i in ins), "no DEMO build arg"
q = lambda l: shlex.quote(" ".join(l))
print("RUNTIME_PKGS=" + q(apt.get(last, [])))
print("OTHER_PKGS=" + q([p for s, l in apt.items() if s != last for p in l]))
print("STAGES=" + q(names))
print("COPIES=" + q(copies))
PY
source "$WORK/lists"
echo "stages: $STAGES; COPY sources: $COPIES"

# ---- BUILD_PKGS exactly as the Dockerfile reads them ----
grep -qF "sed -n '/^BUILD_PKGS=/,/\"\$/p'" "$SRC/Dockerfile" || fail "Dockerfile no longer reads BUILD_PKGS with the sed this test mirrors"
eval "$(sed -n '/^BUILD_PKGS=/,/"$/p' "$SRC/scripts/install-deps.sh")"
[ -n "${BUILD_PKGS:-}" ] || fail "BUILD_PKGS not found in scripts/install-deps.sh"
[ -n "$RUNTIME_PKGS" ] || fail "the runtime stage installs no packages"

# ---- every package exists in the apt lists ----
if [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e '^lock$' -e '^partial$' -e '^auxfiles$')" ]; then
    echo "SKIP package check: apt lists are empty (run apt-get update to enable it)"
else
    # one apt-cache call for all (each call loads the whole cache: seconds under load); a
    # package exists when policy prints a section for it with a candidate version
    # shellcheck disable=SC2086
    apt-cache policy $BUILD_PKGS $RUNTIME_PKGS $OTHER_PKGS >"$WORK/policy" 2>&1 || true
    for p in $BUILD_PKGS $RUNTIME_PKGS $OTHER_PKGS; do
        awk -v p="$p:" '$0 == p {s = 1; next} /^[^ ]/ {s = 0} s && /Candidate:/ && $2 != "(none)" {f = 1} END {exit !f}' \
            "$WORK/policy" || fail "apt package '$p' named by the Dockerfile does not exist (apt-cache policy)"
    done
    echo "apt packages exist: $(echo $BUILD_PKGS $RUNTIME_PKGS | wc -w)"
fi

# ---- the runtime stage provides every library the binaries need ----
ldconfig -p >"$WORK/ldcache"
: >"$WORK/libs"
for bin in "$BUILD/scalexd" "$BUILD/scalex"; do
    [ -x "$bin" ] || fail "$bin not built"
    for lib in $(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
        # the sanitizer build's runtimes are not part of a shipped binary
        case "$lib" in libasan.so*|libubsan.so*|liblsan.so*|libtsan.so*) continue ;; esac
        path=$(awk -v l="$lib" '$1 == l && /x86-64|x86_64|AArch64|aarch64/ {print $NF; exit}' "$WORK/ldcache")
        [ -n "$path" ] || path=$(ldd "$bin" | awk -v l="$lib" '$1 == l {print $3}')
        [ -n "$path" ] || fail "$lib of $bin not found"
        echo "$(basename "$bin") $lib $path $(readlink -f "$path")" >>"$WORK/libs"
    done
done
# one dpkg -S for every name a library may be registered under (merged /usr: dpkg knows a
# file by the name its package shipped, /lib or /usr/lib)
# shellcheck disable=SC2046
dpkg -S $(awk '{r = $4; sub("^/usr", "", r); print $3, $4, r, "/usr" r}' "$WORK/libs" | tr ' ' '\n' | sort -u) \
    >"$WORK/owners" 2>/dev/null || true
while read -r bin lib path real; do
    r=${real#/usr}
    pkg=$(awk -F': ' -v a="$real" -v b="$r" -v c="/usr$r" -v d="$path" \
          '$2 == a || $2 == b || $2 == c || $2 == d {print $1; exit}' "$WORK/owners" | cut -d: -f1)
    [ -n "$pkg" ] || fail "no Debian package owns $path"
    case " $RUNTIME_PKGS libc6 libgcc-s1 libstdc++6 " in
        *" $pkg "*) ;;
        *) fail "$bin needs $lib from $pkg, which the runtime stage does not install" ;;
    esac
done <"$WORK/libs"
echo "runtime stage covers the shared libraries of scalexd and scalex"

# ---- entry point: POSIX sh, passes subcommands to scalexd ----
sh -n "$SRC/deploy/docker-entrypoint.sh" || fail "docker-entrypoint.sh syntax"
TOK=$(SCALEXD_BIN="$BUILD/scalexd" SCALEXD_DATA_DIR="$WORK/data" SCALEXD_DEMO_REFERENCE="$WORK/none" \
      sh "$SRC/deploy/docker-entrypoint.sh" token create --data-dir "$WORK/data" --user alice)
[[ $TOK == sxt_* ]] || fail "entry point did not pass 'token create' through: '$TOK'"
[ -f "$WORK/data/registry.sqlite" ] || ls "$WORK/data" | grep -q . || fail "no registry written"
# the DEMO=1 path: the build stage's training command (read from the Dockerfile, run with
# fewer steps), then the entry point registers its output once as 'pancreas'
train=$(sed -n 's#^ *\(/build/scalex integrate .*\) \\$#\1#p' "$SRC/Dockerfile")
[ -n "$train" ] || fail "no 'scalex integrate' demo training line in the Dockerfile"
# shellcheck disable=SC2001
cmd=$(echo "$train" | sed -e "s#/build/scalex#$BUILD/scalex#" -e 's#"\$DEMO_ITER"#20#' \
      -e "s#/out/share/scalexd/demo-reference#$WORK/demo-reference#")
(cd "$SRC" && eval "$cmd") >"$WORK/train.log" 2>&1 || fail "demo training: $(tail -5 "$WORK/train.log")"
for i in 1 2; do
    SCALEXD_BIN="$BUILD/scalexd" SCALEXD_DATA_DIR="$WORK/demo-data" SCALEXD_DEMO_REFERENCE="$WORK/demo-reference" \
        sh "$SRC/deploy/docker-entrypoint.sh" token create --data-dir "$WORK/demo-data" --user u$i \
        >"$WORK/ep$i.out" 2>"$WORK/ep$i.err" || fail "entry point with the demo reference: $(cat "$WORK/ep$i.err")"
done
[ -f "$WORK/demo-data/references/pancreas/reference.h5" ] || fail "demo reference not registered"
grep -q registered "$WORK/ep1.err" && ! grep -q registered "$WORK/ep2.err" || fail "demo reference registered twice"
echo "ship_dockerfile: all checks passed"
