"""The one training loop (:mod:`.loop`): exact resume, atomic weights-only checkpoints,
``torchrun`` data parallel, and prediction over a dataset.
"""
from .loop import (
    fit, predict, load_checkpoint, init_distributed, seed_everything, constant_buffer_names, checkpoint_checksum,
    check_resume_settings, CheckpointError, ResumeSettingsError)

__all__ = [
    "fit", "predict", "load_checkpoint", "init_distributed", "seed_everything", "constant_buffer_names",
    "checkpoint_checksum", "check_resume_settings", "CheckpointError", "ResumeSettingsError",
]
