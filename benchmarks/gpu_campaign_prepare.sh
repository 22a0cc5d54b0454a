#!/usr/bin/env bash
# Fill the ignored folders the GPU campaign (benchmarks/gpu_campaign.sh) takes along to a machine where nothing
# can be downloaded: .gpu-wheels/ (fvcore, torchattacks and their pure-Python dependencies that the GPU
# machine's python3 lacks, as wheels) and .gpu-data/ (the CIFAR-10 JPEG archive). Run here, from the
# repository root, where pip can reach the package index:
#
#     bash benchmarks/gpu_campaign_prepare.sh [path/to/cifar10-jpeg.tar.gz]
#
# Everything that travels with the working tree must stay under 64 MiB: the script checks the total.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
ARCHIVE=${1:-../shared/data/cifar10-jpeg.tar.gz}
# exact versions: the ones the project is developed and tested with
PACKAGES=(fvcore==0.1.5.post20221221 torchattacks==3.5.1 iopath==0.1.10 yacs==0.1.8 portalocker tabulate termcolor)

mkdir -p .gpu-wheels .gpu-data
# `pip wheel --no-deps` downloads each package and, for those published only as source (fvcore, iopath),
# builds a pure-Python wheel here, so the GPU machine installs without building anything
"$PY" -m pip wheel --no-deps --wheel-dir .gpu-wheels "${PACKAGES[@]}"
rm -f .gpu-wheels/*.tar.gz
cp -f "$ARCHIVE" .gpu-data/cifar10-jpeg.tar.gz && chmod u+w .gpu-data/cifar10-jpeg.tar.gz
ls -l .gpu-wheels .gpu-data
total=$(du -cb .gpu-wheels .gpu-data | tail -1 | cut -f1)
echo "total: $((total / 1024)) KiB (limit 65536 KiB for everything carried)"
if [ "$total" -ge $((60 * 1024 * 1024)) ]; then
    echo "too large to travel with the working tree (keep the carried total under 64 MiB)" >&2
    exit 1
fi
