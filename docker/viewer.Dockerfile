# fedleak's viewer image: Python and fedleak, reading run folders mounted at /runs.
# The Streamlit viewer does not exist yet; it lands with the viewer issue. Until then this image
# runs the fedleak CLI (`docker compose run --rm viewer attack --run /runs/<run> ...`). Then
# the entrypoint becomes, for example:
#   ENTRYPOINT ["streamlit", "run", "<viewer module>", "--server.address=0.0.0.0", \
#               "--server.headless=true", "--browser.gatherUsageStats=false"]
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

RUN useradd --create-home --uid 49999 app
WORKDIR /home/app/fedleak
COPY --chown=app:app pyproject.toml README.md ./
COPY --chown=app:app fedsim fedsim
COPY --chown=app:app attacks attacks
COPY --chown=app:app defenses defenses
COPY --chown=app:app apps apps
RUN python -m pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch torchvision \
    && python -m pip install --no-cache-dir .

ENV FEDLEAK_DATA_DIR=/data
USER app
WORKDIR /runs
ENTRYPOINT ["fedleak"]
CMD ["--help"]
