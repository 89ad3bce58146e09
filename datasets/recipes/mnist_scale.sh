#!/usr/bin/env bash
# MNIST-scale, the paper's protocol (needs all 70,000 MNIST digits: put the IDX files in
# datasets/raw/mnist, or add --download to fetch them with torchvision):
sesn data mnist-scale --seeds 0 1 2 3 4 5
# Offline, from the 10,000 real test digits in ../shared/data/mnist (proportionally smaller
# splits 1429/286/7143; the manifests of these are tracked in datasets/checksums/):
sesn data mnist-scale --reduced --seeds 0 1 2 3 4 5
# Fashion-MNIST-scale (apt-get install dataset-fashion-mnist):
sesn data mnist-scale --dataset fashion-mnist --seeds 0 1 2 3 4 5
# Check every generated realization against its manifest and the tracked checksums:
sesn data mnist-scale --verify
