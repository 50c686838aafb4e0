"""Training: the :class:`Trainer` and its thin function :func:`fit` (:mod:`.trainer`, :mod:`.loop`),
weights-only checkpoints with checksums (:mod:`.checkpoint`), the resume-settings check
(:mod:`.settings`) and ``torchrun`` data parallel (:mod:`.distributed`).
"""

from .checkpoint import (
    CheckpointError,
    checkpoint_checksum,
    export_safetensors,
    load_checkpoint,
    load_safetensors_model,
)
from .distributed import constant_buffer_names, ignore_constant_buffers, init_distributed, wrap_data_parallel
from .loop import fit, predict, seed_everything
from .settings import ResumeSettingsError, check_resume_settings
from .trainer import PRECISIONS, Callback, EarlyStopping, Trainer

__all__ = [
    "Trainer",
    "Callback",
    "EarlyStopping",
    "PRECISIONS",
    "fit",
    "predict",
    "seed_everything",
    "load_checkpoint",
    "checkpoint_checksum",
    "CheckpointError",
    "export_safetensors",
    "load_safetensors_model",
    "check_resume_settings",
    "ResumeSettingsError",
    "init_distributed",
    "constant_buffer_names",
    "ignore_constant_buffers",
    "wrap_data_parallel",
]
