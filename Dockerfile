# hostpulse: the bridge (default command) and the agent, in one image.
# Build stage and runtime stage on the same base; only production dependencies and the build
# output reach the runtime image, which runs as the unprivileged "node" user.

# The base of both stages; test/stack builds on a local stand-in (hostpulse-test/node:22-bookworm-slim).
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY protocol ./protocol
COPY common ./common
COPY broker ./broker
COPY agent ./agent
COPY bridge ./bridge
COPY cli ./cli
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
# pciutils: systeminformation lists GPUs with lspci (agent); NVIDIA's runtime adds nvidia-smi.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pciutils \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
# The bridge's durable queue; a named volume mounted here takes this owner.
RUN mkdir -p /var/lib/hostpulse && chown node:node /var/lib/hostpulse
USER node
# The bridge's health endpoint; the healthcheck asks it from inside the container.
ENV HTTP_HOST=127.0.0.1 HTTP_PORT=8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["bridge"]
