# syntax=docker/dockerfile:1
# The zumik image (ghcr.io/zumik/zumik-portable): one binary, `zumik`, that the infra/k8s-portable
# chart runs as the EPP (`zumik epp`) and the portable operator (`zumik operator`).
# Multi-stage on Debian bookworm: the build stage uses the Debian packages of DEPENDENCIES.md;
# the runtime stage installs only the packages owning the shared libraries the binary links
# (found with ldd) and runs as a non-root user (uid 65532, as the chart's securityContext expects).
#   docker build -t ghcr.io/zumik/zumik-portable:0.1.0 .

ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config ca-certificates \
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev \
      libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc \
      libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev libxxhash-dev libssl-dev \
      libsqlite3-dev libpq-dev libmimalloc-dev libgtest-dev libgmock-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake/ cmake/
COPY src/ src/
# tests/ holds only test code and is left out (.dockerignore): the build compiles the binary alone.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
      -DZUMIK_BENCHMARKS=OFF \
 && cmake --build /build --target zumik -j "$(nproc)" \
 && strip /build/bin/zumik \
 && /build/bin/zumik --help >/dev/null
# The Debian packages owning the shared libraries zumik links (dpkg knows a file under its
# /usr/lib or its merged /lib path, so ask for both); the runtime stage installs exactly these.
RUN for lib in $(ldd /build/bin/zumik | awk '/=> \// {print $3}'); do \
      real=$(realpath "$lib"); \
      { dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null; } | cut -d: -f1; \
    done | sort -u | grep -v -E '^(libc6|libgcc-s1|libstdc\+\+6)$' > /build/runtime-packages.txt \
 && cat /build/runtime-packages.txt

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
COPY --from=build /build/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && groupadd --gid 65532 zumik \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin zumik
COPY --from=build /build/bin/zumik /usr/local/bin/zumik
# Fail the image build, not the pod, when a shared library is missing.
RUN if ldd /usr/local/bin/zumik | grep "not found"; then exit 1; fi \
 && /usr/local/bin/zumik --help >/dev/null
USER 65532:65532
# EPP: 9002 gRPC ext_proc (+ gRPC health), 9090 /metrics.
EXPOSE 9002 9090
ENTRYPOINT ["/usr/local/bin/zumik"]
CMD ["--help"]
