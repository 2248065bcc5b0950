# Mailyard container image. Two stages: the first compiles TypeScript to dist/, the second holds
# only the production dependencies, the compiled code, the launcher and the example configs, and
# runs as the unprivileged user `mailyard`.
#
#   docker build -t mailyard .
#   docker run -d --name mailyard -p 25:25 -p 587:587 \
#     -v /srv/mailyard/etc:/etc/mailyard -v mailyard-data:/var/lib/mailyard -v mailyard-logs:/var/log/mailyard mailyard
#
# Ports below 1024: Docker (20.10 and later) lets unprivileged processes in a container bind them
# (net.ipv4.ip_unprivileged_port_start=0 in the container's network namespace).

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
# Same V8 setting as config/mailyard.service (docs/performance.md).
ENV NODE_OPTIONS="--max-semi-space-size=4 --heap-growing-percent=100"
RUN groupadd --system mailyard \
 && useradd --system --gid mailyard --home-dir /var/lib/mailyard --shell /usr/sbin/nologin mailyard \
 && mkdir -p /var/lib/mailyard /var/log/mailyard /etc/mailyard \
 && chown mailyard:mailyard /var/lib/mailyard /var/log/mailyard
WORKDIR /opt/mailyard
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY config ./config
# The production example as the default configuration; mount /etc/mailyard to replace it.
RUN cp config/mailyard.yaml /etc/mailyard/mailyard.yaml \
 && ln -s /opt/mailyard/bin/mailyard.js /usr/local/bin/mailyard
USER mailyard
VOLUME ["/var/lib/mailyard", "/var/log/mailyard"]
EXPOSE 25 587 465 2525 717
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/mailyard.js"]
CMD ["start", "--config", "/etc/mailyard/mailyard.yaml"]
