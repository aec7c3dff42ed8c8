#!/bin/sh
# Container entry point: registers the demo reference baked into the image (docker build
# --build-arg DEMO=1) the first time a data dir is used, then runs scalexd in the foreground
# (PID 1 is scalexd itself, so `docker stop` sends SIGTERM to it and it drains).
# `docker run IMAGE token create --user NAME` and other subcommands pass through.
set -eu
DATA=${SCALEXD_DATA_DIR:-/var/lib/scalexd}
DEMO=${SCALEXD_DEMO_REFERENCE:-/usr/local/share/scalexd/demo-reference}
SCALEXD=${SCALEXD_BIN:-scalexd}
if [ -f "$DEMO/reference.h5" ] && [ ! -e "$DATA/references/pancreas" ]; then
    mkdir -p "$DATA"
    "$SCALEXD" reference add "$DEMO" --data-dir "$DATA" --name pancreas \
        --description "demo: Baron et al. 2016 human pancreas (175 cells, 4 donors)" \
        --species human --tissue pancreas --labels Group,initial_cluster >/dev/null
    echo "docker-entrypoint: registered the demo reference 'pancreas' in $DATA" >&2
fi
exec "$SCALEXD" "$@"
