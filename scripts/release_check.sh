#!/usr/bin/env bash
# Before every release: what CI leaves out. Run from the repository's virtual environment.
#   1. the slow tests (training that must learn, longer runs): python -m pytest -m slow
#   2. the CUDA tests, which need a GPU machine (they skip, saying so, where none exists)
#   3. the mutation check: deliberate breaks that the tests must catch
# Exit status is non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg
status=0
echo "== slow tests"
python -m pytest -m slow -p no:cacheprovider || status=1
echo "== CUDA tests"
if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    python -m pytest -p no:cacheprovider -rs tests/test_api.py tests/training/test_cuda.py \
        -k cuda || status=1
else
    echo "no GPU here: run this script on a GPU machine before releasing (CUDA tests skipped)"
    status=1
fi
echo "== mutation check"
python scripts/mutation_check.py || status=1
exit $status
