#!/usr/bin/env bash
# Create benchmarks/.venv-breaching: Geiping's `breaching` 0.1.2, the reference Inverting
# Gradients that breaching_runner.py runs. Safe to rerun: it only installs what is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-breaching"
stamp="$venv/.fedleak-requirements"

# breaching's PyPI metadata asks for torch>=1.10, torchvision, hydra-core>=1.1, scipy and lpips.
# Only hydra-core (config) and scipy (imported by breaching.cases at import time) are needed for
# the invertinggradients attack; lpips is imported lazily for LPIPS reporting only, so breaching
# goes in with --no-deps and its needed deps are pinned here to the versions tested.
requirements=(
    torch==2.14.1
    torchvision==0.29.1
    hydra-core==1.3.8
    scipy==1.17.1
    safetensors==0.8.0 # breaching_runner.py: model state, gradient and reconstruction files
    pyarrow==26.0.1    # breaching_smoke.py: reads the CIFAR-10 parquet
)
breaching=breaching==0.1.2

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if [[ "$(cat "$stamp" 2>/dev/null)" != "${requirements[*]} $breaching" ]]; then
    "$venv/bin/pip" install --quiet "${requirements[@]}"
    "$venv/bin/pip" install --quiet --no-deps "$breaching"
    # From /tmp so that no folder of the repo shadows an installed package.
    (cd /tmp && "$venv/bin/python" -W ignore -c "import breaching, hydra, safetensors")
    echo "${requirements[*]} $breaching" >"$stamp"
fi
echo "breaching venv ready: $venv/bin/python"
