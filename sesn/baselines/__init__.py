"""The other methods, one file per method (docs/baselines.md, docs/scale-generalization.md).

The paper's comparison: SI-ConvNet (``si_convnet``), SiCNN (``sicnn``), SEVF (``sevf``),
DSS (``dss``), SS-CNN (``ss_cnn``). STIR's scale-generalization table: pixel pool and slice
pool (``pixel_pool``), conv3d (``conv3d``), the spatial transformer (``stn``). Later
scale-channel families: Gaussian derivative networks (``gaussian_derivative``) and foveated
scale channels (``foveated``), with their shared pool over channels (``scale_channels``).
``common`` holds the interpolation helpers several of them use."""
