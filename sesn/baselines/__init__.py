"""Baseline methods of the paper's comparison (docs/baselines.md), one file per method:
SI-ConvNet (``si_convnet``), SiCNN (``sicnn``), SEVF (``sevf``), DSS (``dss``),
SS-CNN (``ss_cnn``)."""
