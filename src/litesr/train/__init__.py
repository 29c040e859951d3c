"""Training: BasicSR-style YAML option files and the loop that runs them.

:mod:`litesr.train.config` reads the option files the papers ship (BasicSR vocabulary:
``datasets``, ``network_g``, ``train``, ``val``, ``logger``, ``path``) into typed
dataclasses, with a few LiteSR keys on top (``precision``, ``grad_clip``, ``scales``,
``HRImageDataset``). Keys LiteSR does not know are reported as warnings, keys it cannot
honour as errors, so a file either runs as written or says why not.
"""
