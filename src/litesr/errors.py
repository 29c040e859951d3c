"""Exception types whose message is meant to be shown to a user as one line."""
from __future__ import annotations


class LiteSRError(Exception):
    """Base of every error LiteSR raises on purpose; the CLI prints it as ``error: <message>``."""


class CheckpointError(LiteSRError):
    """A weights file could not be read, recognised or loaded."""


class ModelNotFoundError(LiteSRError):
    """A model name is not in the zoo, or its weights are not installed."""


class ScaleError(LiteSRError, ValueError):
    """A model was asked for a scale it does not serve."""


class ConfigurationError(LiteSRError, ValueError):
    """Constructor arguments that do not describe a network LiteSR can build."""


class ImageError(LiteSRError):
    """An image file cannot be read or written; the message is one sentence for the user."""


class PixelLimitError(ImageError):
    """An image has more pixels than the limit (``--max-pixels``) allows to decode."""
