# One image for every skuflow command: processor, aggregator, api, loader
# (and loader watch), broker. docker-compose.yml runs it once per service,
# each with its own command:
#
#   docker build -t skuflow:local .
#   docker run --rm skuflow:local loader token create ops --scope read,write
#
# The binaries are static (CGO_ENABLED=0) and built by
# deploy/build-static.sh, the flags' one home: `make test` runs the same
# script (internal/deploytest), so a change that would break this build
# fails there first.

# The Go of go.mod's go line (internal/deploytest checks they agree).
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# BuildKit sets TARGETOS/TARGETARCH for `docker buildx build --platform`;
# empty (the classic builder), Go builds for the machine it runs on.
ARG TARGETOS
ARG TARGETARCH
RUN GOOS=${TARGETOS} GOARCH=${TARGETARCH} sh deploy/build-static.sh /out/usr/local/bin \
 && mkdir -p /out/var/lib/skuflow/api-spool

# distroless/static: CA certificates (loader push https://...), tzdata and
# /etc/passwd with nonroot (65532), and no shell or package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usr/local/bin/ /usr/local/bin/
# The API's spool. A named volume mounted here starts with this owner, so
# the nonroot user may write to it.
COPY --from=build --chown=65532:65532 /out/var/lib/skuflow /var/lib/skuflow
USER 65532:65532
WORKDIR /var/lib/skuflow
# No entrypoint: the command names the program (docker-compose.yml's
# command: [processor], [loader, watch, /inbox], ...). Alone, the image
# prints the loader's help.
CMD ["loader", "--help"]
