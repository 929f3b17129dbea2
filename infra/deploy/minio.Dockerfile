# MinIO server built from source at the same pin as infra/install.sh (upstream stopped publishing
# community images; a pinned older image such as minio/minio:RELEASE.2025-09-07T16-13-09Z also works).
FROM golang:1.25-bookworm AS build
RUN CGO_ENABLED=0 GOBIN=/out go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/* \
 && useradd -u 1000 -m minio && mkdir -p /data && chown minio /data
COPY --from=build /out/minio /usr/local/bin/minio
USER minio
ENV MINIO_UPDATE=off
EXPOSE 9000 9001
ENTRYPOINT ["minio"]
CMD ["server", "/data", "--address", ":9000", "--console-address", ":9001"]
