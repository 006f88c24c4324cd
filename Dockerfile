# `shoulders serve` for a mounted run folder, as a non-root user, with a health check. The base image is a
# build argument: any Debian-like image with python3 and its venv module (tests/serving/test_container.py
# builds on a Debian base made with debootstrap). From the repository root:
#   podman build --format docker -t shoulders-serve .        (or: docker build -t shoulders-serve .)
#   podman run --rm -p 8000:8000 -v "$PWD/runs/NAME:/srv/run:ro" -e SHOULDERS_API_KEY=change-me shoulders-serve
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 KERAS_BACKEND=tensorflow \
    PATH=/opt/shoulders/bin:$PATH SHOULDERS_PORT=8000

COPY pyproject.toml README.md /src/
COPY src /src/src
RUN python3 -m venv /opt/shoulders \
 && /opt/shoulders/bin/pip install --no-cache-dir --disable-pip-version-check /src \
 && rm -rf /src

RUN useradd --create-home --uid 10001 shoulders
USER shoulders
WORKDIR /home/shoulders
EXPOSE 8000
# Inside a container the server listens on all interfaces: set SHOULDERS_API_KEY when it is reachable.
# SHOULDERS_PORT is serve's --port (change it with -e SHOULDERS_PORT=...).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['SHOULDERS_PORT'], timeout=4)"]
ENTRYPOINT ["shoulders", "serve", "/srv/run", "--host", "0.0.0.0"]
CMD []
