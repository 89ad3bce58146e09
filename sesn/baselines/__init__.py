"""Baseline methods of the paper's comparison (SPEC-baselines.md), one file per method.

Implemented: SI-ConvNet (``si_convnet``), SiCNN (``sicnn``), DSS (``dss``).
Not yet implemented: SEVF and SS-CNN.
"""
