"""Training: the :class:`Trainer` and its thin function :func:`fit` (:mod:`.trainer`, :mod:`.loop`),
weights-only checkpoints with checksums (:mod:`.checkpoint`), the resume-settings check
(:mod:`.settings`) and ``torchrun`` data parallel (:mod:`.distributed`).
"""
from .trainer import Trainer, Callback, EarlyStopping, PRECISIONS
from .loop import fit, predict, seed_everything
from .checkpoint import load_checkpoint, checkpoint_checksum, CheckpointError
from .settings import check_resume_settings, ResumeSettingsError
from .distributed import init_distributed, constant_buffer_names, ignore_constant_buffers, wrap_data_parallel

__all__ = [
    "Trainer", "Callback", "EarlyStopping", "PRECISIONS",
    "fit", "predict", "seed_everything", "load_checkpoint", "checkpoint_checksum", "CheckpointError",
    "check_resume_settings", "ResumeSettingsError", "init_distributed", "constant_buffer_names",
    "ignore_constant_buffers", "wrap_data_parallel",
]
