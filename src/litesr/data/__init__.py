"""Datasets: image folders turned into (LR, HR) pairs for evaluation and training.

One module per concept, bottom up:

* :mod:`litesr.data.files` — which files are images (the one suffix list), listing them,
  one pixel layout (``as_rgb_uint8``), and :class:`~litesr.data.files.DataError`, the
  error of every data problem.
* :mod:`litesr.data.data_dir` — the data directory (``$LITESR_DATA``, default
  ``~/.cache/litesr/data``) where bare set names such as ``Set5`` are looked up.
* :mod:`litesr.data.benchmark` — benchmark sets (Set5, Set14, B100 …): finds the HR images,
  pairs them with given LR files (EDSR ``LR_bicubic/X<s>`` folders, SelfExSR
  ``*_SRF_<s>_HR/LR`` names, an explicit LR folder) or makes the LR exactly as MATLAB
  ``imresize`` does, and checks every pair before anything runs.
* Training: :mod:`~litesr.data.image_store` (HR/LR images in memory),
  :mod:`~litesr.data.dataset` (random patch pairs), :mod:`~litesr.data.samplers`
  (seeded, DDP-split, one scale per batch), :mod:`~litesr.data.loader` (the DataLoader),
  :mod:`~litesr.data.augment` (crops, flips), :mod:`~litesr.data.lmdb_backend` (BasicSR
  LMDBs), :mod:`~litesr.data.scales` (scale-list checks).
"""
