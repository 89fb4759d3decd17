# syntax=docker/dockerfile:1
# The repro image: reprod, reproctl and the LD_PRELOAD shim on Debian 12 (bookworm), as
# deploy/k8s runs it. From the repository root:
#
#   docker build -t registry.example.com/repro:0.1.0 .
#
# The build stage installs the -dev packages of scripts/install-deps.sh (tests are not built);
# the runtime stage holds only the shared libraries the binaries need and runs as the non-root
# user repro (uid 10001). The webhook Deployment keeps that user; the DaemonSet runs reprod as root
# with two capabilities, because it owns root's host directories and reads every dataset file
# (see deploy/k8s/reprod-daemonset.yaml). tests/deploy/dockerfile_test.py checks this file against
# the build outputs and the manifests.

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev librocksdb-dev libssl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DREPRO_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target reprod reproctl reproshim \
 && install -D -m 0755 -s /build/bin/reprod /out/usr/bin/reprod \
 && install -D -m 0755 -s /build/bin/reproctl /out/usr/bin/reproctl \
 && install -D -m 0644 -s /build/lib/libreproshim.so /out/usr/lib/repro/libreproshim.so

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libabsl20220623 libfmt9 libgrpc++1.51 libgrpc29 libprotobuf32 librocksdb7.8 \
      libspdlog1.10 libssl3 libstdc++6 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin repro
COPY --from=build /out/ /
USER 10001:10001
ENTRYPOINT ["/usr/bin/reprod"]
