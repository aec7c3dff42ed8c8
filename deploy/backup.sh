#!/bin/bash
# Back up or restore a scalexd data dir (docs/guide/backup.md). Tested by
# tests/integration/ship_backup.sh.
#
#   backup.sh backup DATA_DIR DEST     safe while scalexd runs
#   backup.sh restore SRC DATA_DIR     scalexd must be stopped; DATA_DIR must be empty or absent
#   backup.sh verify SRC               check a backup against its manifest
#
# Backup: the registry first, with SQLite's online backup (`.backup`: a consistent snapshot
# even while scalexd writes, WAL included), then the files (datasets/, jobs/, references/).
# Files only ever appear after their registry row, so every dataset, result and reference the
# snapshot knows is in the copy; files newer than the snapshot are harmless extras. spool/
# (uploads in flight) and scalexd.port are not copied. A MANIFEST.sha256 lets restore and
# verify detect damaged copies.
set -euo pipefail
die() { echo "backup.sh: $*" >&2; exit 1; }
command -v sqlite3 >/dev/null || die "sqlite3 is needed (Debian package sqlite3)"
cmd=${1:-}
case "$cmd" in
backup)
    [ $# = 3 ] || die "usage: backup.sh backup DATA_DIR DEST"
    src=$2 dst=$3
    [ -f "$src/registry.sqlite" ] || die "$src has no registry.sqlite: not a scalexd data dir"
    [ ! -e "$dst" ] || [ -z "$(ls -A "$dst")" ] || die "$dst exists and is not empty"
    mkdir -p "$dst"
    sqlite3 "$src/registry.sqlite" ".timeout 10000" ".backup '$dst/registry.sqlite'"
    [ "$(sqlite3 "$dst/registry.sqlite" 'PRAGMA integrity_check;')" = ok ] ||
        die "the registry copy fails PRAGMA integrity_check"
    for d in datasets jobs references; do
        [ -d "$src/$d" ] && cp -a "$src/$d" "$dst/"
    done
    (cd "$dst" && find . -type f ! -name MANIFEST.sha256 -print0 | sort -z |
        xargs -0 -r sha256sum >MANIFEST.sha256)
    echo "backup.sh: $src -> $dst ($(wc -l <"$dst/MANIFEST.sha256") files, $(du -sh "$dst" | cut -f1))"
    ;;
verify)
    [ $# = 2 ] || die "usage: backup.sh verify SRC"
    [ -f "$2/MANIFEST.sha256" ] || die "$2 has no MANIFEST.sha256"
    (cd "$2" && sha256sum --quiet -c MANIFEST.sha256) || die "$2 does not match its manifest"
    [ "$(sqlite3 "$2/registry.sqlite" 'PRAGMA integrity_check;')" = ok ] || die "registry damaged"
    echo "backup.sh: $2 verified"
    ;;
restore)
    [ $# = 3 ] || die "usage: backup.sh restore SRC DATA_DIR"
    src=$2 dst=$3
    "$0" verify "$src"
    [ ! -e "$dst" ] || [ -z "$(ls -A "$dst")" ] || die "$dst is not empty: restore into a new dir"
    mkdir -p "$dst"
    cp -a "$src/." "$dst/"
    rm -f "$dst/MANIFEST.sha256"
    echo "backup.sh: restored $src into $dst; start scalexd with --data-dir $dst"
    ;;
*)
    die "usage: backup.sh backup DATA_DIR DEST | restore SRC DATA_DIR | verify SRC"
    ;;
esac
