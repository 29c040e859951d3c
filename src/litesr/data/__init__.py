"""Datasets: image folders turned into (LR, HR) pairs for evaluation and training.

* :mod:`litesr.data.benchmark` — benchmark sets (Set5, Set14, B100 …): finds the HR images,
  pairs them with given LR files (EDSR ``LR_bicubic/X<s>`` folders, SelfExSR
  ``*_SRF_<s>_HR/LR`` names, an explicit LR folder) or makes the LR exactly as MATLAB
  ``imresize`` does, and checks every pair before anything runs.
* The other modules of this package serve training (patch datasets, augmentation, storage).
"""
