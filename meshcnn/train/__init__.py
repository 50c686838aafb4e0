"""Training: the :class:`Trainer` and its thin function :func:`fit` (:mod:`.trainer`, :mod:`.loop`),
weights-only checkpoints with checksums (:mod:`.checkpoint`), the resume-settings check
(:mod:`.settings`) and ``torchrun`` data parallel (:mod:`.distributed`).
"""

from .checkpoint import CheckpointError, load_checkpoint
from .distributed import init_distributed, wrap_data_parallel
from .loop import fit, predict, seed_everything
from .settings import ResumeSettingsError
from .trainer import Callback, EarlyStopping, Trainer

__all__ = [
    "Trainer",
    "Callback",
    "EarlyStopping",
    "fit",
    "predict",
    "seed_everything",
    "load_checkpoint",
    "CheckpointError",
    "ResumeSettingsError",
    "init_distributed",
    "wrap_data_parallel",
]
