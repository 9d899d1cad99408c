# syntax=docker/dockerfile:1
#
# otpbot container image: a static binary on distroless, running as non-root.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t otpbot .
#   docker run -v otpbot-data:/data -v ./config.yaml:/etc/otpbot/config.yaml:ro \
#     -e OTPBOT_TELEGRAM_TOKEN=... -p 8080:8080 otpbot
#
# deploy/compose.yaml runs it with Redis.

ARG GO_VERSION=1.26

# ---- build: compile both binaries without cgo so they run on an image with no libc.
FROM golang:${GO_VERSION} AS builder
WORKDIR /src
# Dependencies first: this layer is reused until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/otpbot ./cmd/otpbot \
 && go build -trimpath -ldflags "-s -w" -o /out/healthcheck ./deploy/healthcheck \
 && mkdir -p /out/data

# ---- runtime: no shell, no package manager; CA certificates and tzdata included.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /out/otpbot /otpbot
COPY --from=builder /out/healthcheck /healthcheck
# The data volume must belong to the runtime user, or the embedded store cannot be created.
COPY --from=builder --chown=65532:65532 /out/data /data
WORKDIR /data
# 65532 is distroless's "nonroot"; numeric, so runtimes can check it is not root.
USER 65532:65532
ENV OTPBOT_CONFIG=/etc/otpbot/config.yaml \
    OTPBOT_HTTP_LISTEN=:8080 \
    OTPBOT_STORE_PATH=/data/otpbot.db
VOLUME ["/data"]
EXPOSE 8080
# Distroless has no curl or wget: /healthcheck (deploy/healthcheck, stdlib only)
# GETs /healthz on the port named by OTPBOT_HTTP_LISTEN and exits 0 or 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 CMD ["/healthcheck"]
# otpbot drains for at most shutdown_timeout (15s) after SIGTERM; stop with
# `docker stop -t 20` (compose: stop_grace_period) so it is not killed mid-drain.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/otpbot"]
CMD ["serve"]
