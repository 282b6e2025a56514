# Switchboard's binaries on Debian 12, with the Debian libraries they link.
#   docker build -t switchboard:0.1.0 .
# One image for every binary: the Kubernetes manifests (deploy/kubernetes) choose the
# command. Building it is not part of `make test`.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      cmake g++ make pkg-config libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev prometheus-cpp-dev libsqlite3-dev libgtest-dev libgmock-dev libbenchmark-dev \
      nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libcpp-httplib-dev curl ca-certificates openssl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DSWITCHBOARD_BUILD_TESTS=OFF \
    && cmake --build /build -j"$(nproc)" --target switchboard-controlplane switchboard-agent switchboard-sync sbctl

FROM debian:12-slim
# The runtime libraries of the -dev packages above (Debian 12 names).
RUN apt-get update && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libabsl20220623 libprometheus-cpp-pull1.0 libprometheus-cpp-core1.0 \
      libsqlite3-0 libyaml-cpp0.7 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/bin/switchboard-controlplane /build/bin/switchboard-agent \
     /build/bin/switchboard-sync /build/bin/sbctl /usr/local/bin/
# The nonroot user the manifests run as.
RUN useradd --system --uid 65532 --no-create-home switchboard
USER 65532
EXPOSE 50051 9464 9465
ENTRYPOINT []
CMD ["switchboard-controlplane", "--help"]
