"""Datasets: benchmark sets (HR folders with given or on-the-fly MATLAB-bicubic LR).

:mod:`litesr.data.benchmark` finds the images of a benchmark set, pairs HR with LR files
(EDSR ``LR_bicubic/X<s>`` folders, SelfExSR ``*_SRF_<s>_HR/LR`` names, plain ``--lr``
folders) or makes the LR exactly as MATLAB ``imresize`` does, and checks every pair.
"""
