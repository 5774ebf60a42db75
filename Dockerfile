# syntax=docker/dockerfile:1
# One image per service from one file:  docker build --build-arg SERVICE=order -t shop/order:dev .
# Every runtime dependency ships manylinux wheels for linux/amd64 AND linux/arm64
# (grpcio, uvloop, pydantic-core, argon2-cffi-bindings, cryptography, httptools ...); `--only-binary`
# makes the build fail loudly instead of silently needing a compiler.
ARG PYTHON_IMAGE=python:3.13.15-slim-trixie

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements/runtime.txt /tmp/runtime.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --only-binary=:all: -r /tmp/runtime.txt \
 # protoc (grpcio-tools) and setuptools are only needed for `make proto`, not at runtime
 && /opt/venv/bin/pip uninstall --yes grpcio-tools setuptools pip \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE}
ARG SERVICE
RUN test -n "${SERVICE}" || (echo "build with --build-arg SERVICE=<service>" >&2 && exit 1) \
 && groupadd --gid 10001 shop && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin shop
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY services/ ./services/
RUN python -m compileall -q /app/services
# The root filesystem is read-only in the cluster: no .pyc writes, temp files go to the /tmp emptyDir.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SERVICE=${SERVICE} \
    HOST=0.0.0.0
USER 10001:10001
# services/<SERVICE>/__main__.py starts uvicorn on $HOST:$PORT.
CMD ["/bin/sh", "-c", "exec python -m \"services.${SERVICE}\""]
