#!/usr/bin/env bash
# ./run.sh test              run the whole test suite
# ./run.sh <program> ...     run python -m legacy_rnn.<program> (an experiment or a tool)
# The first call creates .venv and installs the package with its test extras.
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  echo "run.sh: setting up $venv (first use or setup.cfg changed)..." >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e '.[test]'
  touch "$stamp"
fi
py="$venv/bin/python"
# TensorFlow's C++ start-up notices (CUDA probing, CPU features) are noise on a CPU machine.
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

if [ $# -eq 0 ]; then
  echo "usage: ./run.sh test [pytest args] | ./run.sh <program> [flags]" >&2
  echo "experiments: mnist_rnn mnist_birnn toy_dynamic_rnn imdb_rnn series_rnn seq2seq_attention" >&2
  echo "tools: inspect convert upgrade golden canary backends bench imdb_data" >&2
  exit 2
fi
cmd=$1; shift
case "$cmd" in
  test) exec "$py" -m pytest "$@" ;;
  *) exec "$py" -m "legacy_rnn.$cmd" "$@" ;;
esac
