# iflow: multi-stage image on the current Node.js LTS (26, Active LTS since 2026-10-28; Debian 13 "trixie", its
# images' default), running as the non-root user `node`. Every production dependency supports Node 26 (better-sqlite3
# since 12.11).
#   docker build -t iflow .
#   docker run -p 8080:8080 -v iflow-data:/data -v "$PWD/flows:/app/flows:ro" iflow
ARG NODE_IMAGE=node:26-trixie-slim

# ---- build: production dependencies, with the toolchain better-sqlite3 needs when no prebuilt binary fits
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# tsx is a runtime dependency: the server and the flows' TypeScript scripts run without a build step.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime: no compiler, no npm cache, no root
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    IFLOW_DATA_DIR=/data \
    IFLOW_FLOWS_DIR=/app/flows
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY flows ./flows
# The data dir belongs to `node` before it becomes a volume, so a new named volume inherits that owner.
RUN mkdir -p /data && chown node:node /data && chmod 700 /data
USER node
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "bin/iflow.js", "start"]
