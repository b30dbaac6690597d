#!/usr/bin/env bash
# Creates bench/.venv-autogluon: AutoGluon's tabular predictor for bench/autogluon_peer.py.
# A separate environment, never a project dependency (gitignored).
# Extras: lightgbm, catboost, xgboost (the GBMs medium_quality trains). Not fastai / torch: those would
# pull a second torch; without them AutoGluon skips its two neural networks (NN_TORCH, FASTAI) and says so.
# Usage: bash bench/setup_autogluon.sh [PYTHON]   (default: the interpreter the project's .venv was made with)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-autogluon"
python="${1:-$(readlink -f "$here/../.venv/bin/python")}"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q -U pip
"$venv/bin/pip" install "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3"
"$venv/bin/python" -c "import autogluon.tabular, lightgbm, catboost, xgboost; print('autogluon.tabular', autogluon.tabular.__version__)"
