"""Training: BasicSR-style YAML option files, the loop that runs them, and their test files.

:mod:`litesr.train.config` reads the option files the papers ship (BasicSR vocabulary:
``datasets``, ``network_g``, ``train``, ``val``, ``logger``, ``path``) into the typed
dataclasses of :mod:`.options`, with a few LiteSR keys on top (``precision``, ``grad_clip``,
``scales``, ``HRImageDataset``). A key LiteSR does not know is an error with a guess, keys it
cannot honour are errors, so a file either runs as written or says why not.
:mod:`.trainer` runs a training file (resumable, time-budgeted: :mod:`.experiment`,
:mod:`.budget`), :mod:`.tester` a test file (``litesr test``); both score through
:mod:`.scoring`, the code behind ``litesr eval``.
"""
