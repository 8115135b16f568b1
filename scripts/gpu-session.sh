#!/usr/bin/env bash
# One device session's GPU checks, in stages: bash scripts/gpu-session.sh STAGE...
#   tests     the gpu-marked tests (compiled Triton kernels against the torch reference),
#             in one process: addopts' -n (pytest-xdist) is dropped, so the machine
#             needs no xdist and the tests do not share the GPU
#   headline  suites/kernels-headline.yaml
#   fields    suites/fields-throughput.yaml
#   register  suites/registration-gpu.yaml
#   register3d suites/registration-3d-icbm-gpu.yaml: the tuned 3-D 2 mm CerebrA suite
#             (symmetric svf through Triton, FireANTs greedy and SyN; 144 cells), kept
#             as far as it gets: a second call resumes it with `--resume` by hand
#   sweep     scripts/sine_mlp_sweep.py: the sine-MLP against torch.compile, widths 64,
#             128, 256, fp16 and fp32, forward and forward + backward, interleaved
#             (3 rounds a case), rows in $OUT/sweep.jsonl as they are measured
#   first     what the first call of a lent GPU runs, within ~9 minutes:
#             headline (warp 2-D/3-D forward and forward + backward, svf_exp planar
#             and channels_last, and the sine-MLP, each against eager and
#             torch.compile) then sweep;
#             run it as: bash scripts/gpu-session.sh first   (device timeout_s 600)
#   PATH.yaml any suite file (its log and run folder named after the file)
# Each stage has its own time limit (STAGE_LIMIT_<stage>, seconds), writes its log to
# $OUT/<stage>.log and its run folder to $OUT/<stage>.tar.gz, so a stage cut short
# keeps what it measured. Packages the GPU machine lacks (nibabel, nilearn, plotly)
# come as wheels from .whl/ when that folder is there; fetch them once with
#   echo /.whl/ >> .git/info/exclude
#   python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 -d .whl nibabel nilearn plotly
# and name .whl in the device call's carry. A suite file of your own can live in an
# ignored folder carried the same way (PATH.yaml stages take any path).
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
fi
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
} >"$OUT/machine.txt" 2>&1

run_suite() {  # stage, suite file, limit
    local res=/tmp/results-$1
    timeout --signal=TERM --kill-after=20 "$3" python3 -m bench run "$2" --output "$res" \
        >"$OUT/$1.log" 2>&1
    echo "exit $? after ${SECONDS}s" >>"$OUT/$1.log"
    # NIfTI volumes stay behind: a 3-D run's are over the 16 MiB a returned file may be
    tar -czf "$OUT/$1.tar.gz" --exclude="*.nii.gz" -C "$res" . 2>>"$OUT/$1.log"
}

stages=()
for stage in "$@"; do
    if [ "$stage" = first ]; then
        # 200 + 320 s of stage limits, plus the machine's set-up, under the 600 s a call
        # (the headline suite took 69 s on the H200; the sweep builds 12 compiled cases)
        stages+=(headline sweep)
        : "${STAGE_LIMIT_headline:=200}" "${STAGE_LIMIT_sweep:=320}"
    else
        stages+=("$stage")
    fi
done

for stage in "${stages[@]}"; do
    start=$SECONDS
    case $stage in
    tests)
        timeout --signal=TERM --kill-after=20 "${STAGE_LIMIT_tests:-200}" \
            python3 -m pytest -q -m gpu tests/kernels -p no:cacheprovider -rA \
            -o addopts=--benchmark-disable \
            --junitxml="$OUT/tests.xml" >"$OUT/tests.log" 2>&1
        echo "exit $? after $((SECONDS - start))s" >>"$OUT/tests.log"
        ;;
    headline) run_suite headline suites/kernels-headline.yaml "${STAGE_LIMIT_headline:-330}" ;;
    fields) run_suite fields suites/fields-throughput.yaml "${STAGE_LIMIT_fields:-150}" ;;
    register) run_suite register suites/registration-gpu.yaml "${STAGE_LIMIT_register:-300}" ;;
    register3d)
        run_suite register3d suites/registration-3d-icbm-gpu.yaml "${STAGE_LIMIT_register3d:-540}"
        ;;
    sweep)
        timeout --signal=TERM --kill-after=20 "${STAGE_LIMIT_sweep:-200}" \
            python3 scripts/sine_mlp_sweep.py "$OUT/sweep.jsonl" >"$OUT/sweep.log" 2>&1
        echo "exit $? after $((SECONDS - start))s" >>"$OUT/sweep.log"
        ;;
    *.yaml) run_suite "$(basename "$stage" .yaml)" "$stage" "${STAGE_LIMIT_suite:-300}" ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
    esac
    echo "$stage: $((SECONDS - start)) s" >>"$OUT/machine.txt"
done
