# syntax=docker/dockerfile:1
# Flowtel agent image.
#
#   docker build -t <registry>/flowtel:0.1.0 .
#
# Build stage: the toolchain (clang, llvm, bpftool, libbpf-dev, node-gyp's
# compilers) builds the native addon, the BPF objects and the TypeScript with
# scripts/build-image-contents.sh, the same script CI runs outside Docker.
# The BPF objects are compiled against the BTF of Debian's 6.1 kernel package,
# which the script downloads (xz-utils and zstd unpack it): whatever kernel the
# build host runs, the image is the same and loads on every kernel of
# docs/kernels.md.
# Runtime stage: node and the shared libraries the addon links against
# (libbpf1, libelf1, zlib1g), nothing else.

FROM node:20-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config bpftool make g++ python3 xz-utils zstd \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# To compile against another BTF (a build without access to Debian's servers),
# put it in the build context and pass --build-arg VMLINUX_BTF=/src/<file>.
ARG VMLINUX_BTF=
RUN VMLINUX_BTF="${VMLINUX_BTF}" scripts/build-image-contents.sh /out

FROM node:20-bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libbpf1 libelf1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out /opt/flowtel
WORKDIR /opt/flowtel
ENV NODE_ENV=production
# Large buffers (OTLP requests of a big export) always mmap'd, so freeing them returns the memory (test/support/agent-process.ts AGENT_ENV).
ENV MALLOC_MMAP_THRESHOLD_=131072
LABEL org.opencontainers.image.title="flowtel" \
      org.opencontainers.image.description="Kubernetes network-telemetry agent: eBPF tracepoint probes to OpenTelemetry" \
      org.opencontainers.image.licenses="Apache-2.0"
# Root, because Kubernetes grants added capabilities (CAP_BPF, CAP_PERFMON, ...)
# only to uid 0; the Helm chart drops every other capability, forbids privilege
# escalation and mounts the root file system read-only.
USER 0:0
# A 1 MiB young generation: about 50 MB less resident memory for an agent on
# every node, at no measured cost to collection time. One V8 worker thread for
# background GC and compilation: about 2 MB less (thread stacks and their
# buffers) for an agent that should stay on one core anyway. No allocation-site
# pretenuring: with it, after the first collection of many new flows, the
# export's short-lived objects went to the old generation and piled up there,
# 20-30 MiB more resident memory until the next full GC, which V8 sometimes put
# off for 20 s (docs/performance.md, userspace capacity, tenth pass).
ENTRYPOINT ["node", "--max-semi-space-size=1", "--v8-pool-size=1", "--no-allocation-site-pretenuring", "/opt/flowtel/dist/src/cli/main.js"]
CMD ["run"]
