# podfabric images. NOT BUILT OR RUN HERE: the machine this was written on has no Docker engine, so this
# file is reviewed but untested. Build with Docker/BuildKit (the tags are the ones the chart uses,
# cdk8s/options.ts IMAGE_REPOSITORY + package.json version, and GOBGP_IMAGE):
#
#   docker build -t ghcr.io/podfabric/podfabric:0.1.0 .                  # controller + agent (default target)
#   docker build -t ghcr.io/podfabric/gobgpd:3.10.0 --target gobgpd .    # the gobgpd sidecar
#
# Base images are pinned by tag; pin them by digest (FROM image:tag@sha256:...) for reproducible builds.

# ---- build: compile the TypeScript, keep only production dependencies --------------------------------
FROM node:20-bookworm-slim AS build
# The agent loads GoBGP's v3 API .proto files at run time (operator/gobgp/api.ts). Debian ships
# them in golang-github-osrg-gobgp-dev (3.10.0, matching the gobgpd sidecar); that package drags in
# ~70 Go -dev packages, so it is installed here and only its api/ folder reaches the final image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends golang-github-osrg-gobgp-dev=3.10.0-1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY operator/ operator/
COPY bin/ bin/
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# ---- gobgpd: the sidecar (GoBGP v3: v4 has a different gRPC API that the agent does not speak) -------
FROM debian:bookworm-slim AS gobgpd
RUN apt-get update \
 && apt-get install -y --no-install-recommends gobgpd=3.10.0-1+b4 \
 && rm -rf /var/lib/apt/lists/*
# Runs as uid 0 with every capability dropped but NET_BIND_SERVICE (see the DaemonSet): the agent, also
# uid 0, must be able to connect to the root-owned API socket. The chart gives the command
# (API on a Unix socket only, pprof off).
ENTRYPOINT ["gobgpd"]
CMD ["--api-hosts=unix:///run/gobgp/gobgp.sock", "--pprof-disable"]

# ---- runtime: controller and agent (`podfabric controller` | `podfabric agent`) ---------------------
FROM node:20-bookworm-slim
# The agent drives kernel routes and reads links through iproute2 (`ip -batch`, `ip -j`), enforces
# NetworkPolicy with nftables (`nft -f`) and cuts denied flows with conntrack.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 nftables conntrack \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules/ ./node_modules/
COPY --from=build /src/build/ ./build/
COPY --from=build /src/bin/ ./bin/
COPY --from=build /usr/share/gocode/src/github.com/osrg/gobgp/api/*.proto /usr/share/gocode/src/github.com/osrg/gobgp/api/
# Non-root by default (the controller runs so); the agent's pod spec runs it as uid 0 with only NET_ADMIN.
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/podfabric.js"]
