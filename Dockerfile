# codex-cloud: one image, one entrypoint (`codex-cloud`), two roles:
#   app:    codex-cloud serve            (the GitHub App; HTTP on $PORT, GET /healthz)
#   runner: codex-cloud runner --claim   (one coding task; in ECS the Fargate task is the sandbox)
#
#   docker build -t codex-cloud .
#   docker run --rm -p 3000:3000 --env-file .env -v codex-data:/data codex-cloud
#
# Bring your own runner image: `FROM <this image>`, add toolchains as root, then switch back to
# `USER 1000:1000` and keep the ENTRYPOINT (see infra/README.md).

# Pin by digest for reproducible builds, e.g. --build-arg NODE_IMAGE=node:24-trixie-slim@sha256:…
ARG NODE_IMAGE=node:24-trixie-slim

# ── build: all dependencies, compile TypeScript, pack exactly what the npm package publishes ──
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency install script is needed to compile; the `node` devDependency's
# script would download a second Node.js binary (the base image has Node 24 already).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY app.yml ./
COPY src ./src
RUN npm run build \
 && npm pack --ignore-scripts --pack-destination /tmp \
 && mkdir /pkg \
 && tar -xzf /tmp/codex-cloud-*.tgz -C /pkg --strip-components=1

# ── deps: production dependencies only ──
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No production dependency has an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ── runtime ──
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="codex-cloud" \
      org.opencontainers.image.description="Self-hostable Codex Cloud: GitHub App and coding-agent runner" \
      org.opencontainers.image.licenses="Apache-2.0"
# Tools the agent uses in checkouts (git, compilers, Python, search), plus tini as PID 1.
# No bubblewrap: in ECS the Fargate task is the sandbox (the app's TaskSpec says `sandbox: container`).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential \
      ca-certificates \
      curl \
      git \
      jq \
      procps \
      python-is-python3 \
      python3 \
      python3-pip \
      python3-venv \
      ripgrep \
      tini \
      unzip \
      xz-utils \
      zip \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system init.defaultBranch main \
 && git config --system advice.detachedHead false

WORKDIR /app
# Exactly what `npm pack` publishes (package.json "files": bin, dist, …) plus production
# dependencies; everything belongs to root and is read-only for the runtime user.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /pkg/ ./
RUN chmod 0755 bin/codex-cloud.js \
 && ln -s /app/bin/codex-cloud.js /usr/local/bin/codex-cloud \
 && mkdir -p /data /workspace \
 && chown 1000:1000 /data /workspace

# NODE_ENV is deliberately not set here: in the runner, `npm install` in a checkout must still
# install devDependencies (the app's task definition sets NODE_ENV=production).
# Global npm installs and pip user installs land in the non-root user's home.
ENV PORT=3000 \
    CODEX_DATA_DIR=/data \
    HOME=/home/node \
    NPM_CONFIG_PREFIX=/home/node/.npm-global \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/home/node/.npm-global/bin:/home/node/.local/bin:$PATH

# The official image's `node` user.
USER 1000:1000
EXPOSE 3000

# For `docker run` of the app. ECS ignores it: the task definition and the ALB target group carry
# their own checks. A runner container has no server, so it reports unhealthy under plain docker.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# tini forwards signals and reaps orphans; -s keeps that working when it is not PID 1 (ECS runs
# the runner with its own init process first).
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "codex-cloud"]
CMD ["serve"]
