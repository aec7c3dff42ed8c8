# scalexd container image: SCALEX integration, projection and label transfer over HTTP.
#
#   docker build -t scalexd .                          # the daemon only
#   docker build -t scalexd --build-arg DEMO=1 .       # + a demo pancreas reference (trained at build)
#   docker run -d --name scalexd -p 8080:8080 -v scalexd-data:/var/lib/scalexd scalexd
#   docker exec scalexd scalexd token create --user alice
#
# Settings are SCALEXD_<NAME> environment variables (docs/guide/index.md), e.g.
# -e SCALEXD_WORKERS=2 -e SCALEXD_MAX_UPLOAD_BYTES=8G. Linted by tests/integration/ship_dockerfile.sh.

# ---- build stage: the packages of scripts/install-deps.sh (BUILD_PKGS), then cmake ----
FROM debian:bookworm AS build
ARG DEMO=0
ARG DEMO_ITER=2000
ENV DEBIAN_FRONTEND=noninteractive
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
# BUILD_PKGS is read from install-deps.sh, so the image and the developer setup cannot differ
RUN eval "$(sed -n '/^BUILD_PKGS=/,/"$/p' /src/scripts/install-deps.sh)" \
 && test -n "$BUILD_PKGS" \
 && apt-get update \
 && apt-get install -y --no-install-recommends $BUILD_PKGS \
 && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt /src/
COPY core /src/core
COPY cli /src/cli
COPY server /src/server
COPY api /src/api
COPY schema /src/schema
COPY bench /src/bench
COPY tests /src/tests
COPY web /src/web
COPY data/demo /src/data/demo
WORKDIR /src
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" --target scalexd scalex_cli \
 && mkdir -p /out/bin /out/share/scalexd \
 && cp /build/scalexd /build/scalex /out/bin/ \
 && cp -r web /out/share/scalexd/web
# optional demo reference: SCALEX trained on the shipped human pancreas cells (data/demo);
# one line, so tests/integration/ship_dockerfile.sh can run the same command
RUN if [ "$DEMO" = 1 ]; then \
      /build/scalex integrate --data_list data/demo/reference_human.h5ad --batch_name Sample --min_features 10 --max_iteration "$DEMO_ITER" --seed 1 -o /out/share/scalexd/demo-reference \
      && cp data/demo/query_mouse.h5ad /out/share/scalexd/demo-query_mouse.h5ad; \
    fi

# ---- runtime stage: shared libraries only, non-root ----
FROM debian:bookworm-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libhdf5-103-1 liblzf1 libdeflate0 libopenblas0-pthread zlib1g libigraph3 libcairo2 \
      libsqlite3-0 libpq5 libuv1 libmicrohttpd12 libjansson4 libssl3 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system scalexd \
 && useradd --system --gid scalexd --home-dir /var/lib/scalexd --shell /usr/sbin/nologin scalexd \
 && mkdir -p /var/lib/scalexd \
 && chown scalexd:scalexd /var/lib/scalexd
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/share/scalexd/ /usr/local/share/scalexd/
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV SCALEXD_LISTEN=0.0.0.0:8080 \
    SCALEXD_DATA_DIR=/var/lib/scalexd \
    OPENBLAS_NUM_THREADS=1
USER scalexd
VOLUME ["/var/lib/scalexd"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD []
