# fedleak's SuperExec: runs the ServerApp (beside the SuperLink) or a ClientApp (beside a
# SuperNode). In Flower 1.42 apps run in SuperExec processes; with `--isolation process` the
# SuperLink and SuperNodes import no app code, so they use Flower's images unchanged and only
# this image needs fedleak and its dependencies. Build context: the repository root.
ARG FLWR_VERSION=1.42.0
FROM flwr/superexec:${FLWR_VERSION}

# CPU wheels keep the image small; pass --build-arg TORCH_INDEX_URL=<a CUDA wheel index> for GPUs.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# The base image runs as `app`, owner of /app and of the venv pip installs into.
RUN mkdir /app/fedleak
WORKDIR /app/fedleak
COPY --chown=app:app pyproject.toml README.md ./
COPY --chown=app:app fedsim fedsim
COPY --chown=app:app attacks attacks
COPY --chown=app:app defenses defenses
COPY --chown=app:app apps apps
# The image already holds flwr; its [simulation] extra (Ray) serves only the Simulation Engine.
RUN sed -i 's/"flwr\[simulation\]/"flwr/' pyproject.toml \
    && python -m pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch torchvision \
    && python -m pip install --no-cache-dir .

# Offline datasets (cifar10/, mnist/ of Parquet files) are mounted here; run folders under /runs.
ENV FEDLEAK_DATA_DIR=/data
WORKDIR /app
# ENTRYPOINT stays Flower's: flower-superexec --runtime-api-address <SuperLink or SuperNode>.
