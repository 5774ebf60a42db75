# One image per service from one file:  docker build --build-arg SERVICE=order -t shop/order:dev .
#
# Size budget (< 150 MB uncompressed): the runtime stage is Google's distroless Python 3.13 on Debian 13
# (~55 MB: CPython and its shared libraries, no shell, no package manager, no pip) plus ~85 MB of wheels.
# python:3.13-slim alone is ~120 MB, which is why it is only the build stage here.
#
# Every runtime dependency ships manylinux wheels for linux/amd64 AND linux/arm64 (grpcio, pydantic-core,
# argon2-cffi-bindings, cryptography, ...); `--only-binary` makes the build fail loudly instead of silently
# needing a compiler. The builder's Python (3.13.x) has the same ABI as the distroless one (Debian's 3.13).
#
# Pinning: the build stage is pinned by version tag. Distroless publishes no version tags, only digests;
# `make images` prints the digest each build resolved, so a class can pin it with
# --build-arg RUNTIME_IMAGE=gcr.io/distroless/python3-debian13@sha256:<digest>.
ARG BUILD_IMAGE=python:3.13.15-slim-trixie
ARG RUNTIME_IMAGE=gcr.io/distroless/python3-debian13:nonroot

FROM ${BUILD_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements/runtime.txt /tmp/runtime.txt
RUN pip install --only-binary=:all: --no-compile --target /opt/site -r /tmp/runtime.txt
COPY services/ /app/services/
# Byte-compile once here: the root filesystem is read-only in the cluster.
RUN python -m compileall -q /opt/site /app/services

FROM ${RUNTIME_IMAGE}
ARG SERVICE
COPY --from=builder /opt/site /opt/site
COPY --from=builder /app /app
WORKDIR /app
ENV PYTHONPATH=/opt/site:/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SERVICE=${SERVICE} \
    HOST=0.0.0.0
USER 10001:10001
# services/__main__.py runs services/$SERVICE/__main__.py, which starts uvicorn on $HOST:$PORT.
# An absolute path, as distroless recommends (no shell; /usr/bin/python3 links to Debian's python3.13).
ENTRYPOINT ["/usr/bin/python3", "-m", "services"]
