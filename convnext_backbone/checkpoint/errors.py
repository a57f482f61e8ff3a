"""The errors a user can get from checkpoint handling, one class per thing to fix.

All derive from :class:`CheckpointError`, so callers can catch every checkpoint problem at once.
A missing file is a plain ``FileNotFoundError`` (naming the path), as Python users expect. The
refusals of the safe-loading policy are also ``pickle.UnpicklingError`` (what torch raises), so
code that catches torch's refusal catches ours.
"""
import pickle


class CheckpointError(Exception):
    """Base class: a checkpoint that cannot be used, with a message saying why and what to do."""


class CheckpointReadError(CheckpointError):
    """The file exists but is not a readable checkpoint (truncated, corrupt, not a checkpoint)."""


class DownloadError(CheckpointReadError):
    """A checkpoint URL could not be downloaded completely (no network, an HTTP error, a
    transfer cut off); nothing was kept under the cached name."""


class NoReleasedWeightsError(CheckpointError, LookupError):
    """``released`` was asked for a config that no model index lists with released weights."""


class UnsafeCheckpointError(CheckpointReadError, pickle.UnpicklingError):
    """The file pickles Python objects whose loading would execute code; we refuse to."""


class UnknownCheckpointFormatError(CheckpointError, ValueError):
    """The state dict's key names match none of the known ConvNeXt layouts."""


class CheckpointMismatchError(CheckpointError, ValueError):
    """The converted weights do not fit the backbone (another arch, or nothing matches).

    Attributes ``arch`` (the backbone's arch name), ``unexpected`` and ``missing`` (key lists)
    and ``mismatched`` (``(key, checkpoint_shape, model_shape)`` triples) say exactly what failed.
    """

    def __init__(self, message, arch=None, unexpected=(), missing=(), mismatched=()):
        super().__init__(message)
        self.arch = arch
        self.unexpected = list(unexpected)
        self.missing = list(missing)
        self.mismatched = list(mismatched)


class UntrustedCheckpointError(UnsafeCheckpointError):
    """A training checkpoint needs code-executing unpickling and nobody vouched for it
    (``--trust-checkpoint``, :func:`~convnext_backbone.checkpoint.trust_checkpoint`)."""
