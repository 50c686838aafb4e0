"""Training: the one loop (:mod:`.loop`), weights-only checkpoints with checksums
(:mod:`.checkpoint`), the resume-settings check (:mod:`.settings`) and ``torchrun``
data parallel (:mod:`.distributed`).
"""
from .loop import fit, predict, seed_everything
from .checkpoint import load_checkpoint, checkpoint_checksum, CheckpointError
from .settings import check_resume_settings, ResumeSettingsError
from .distributed import init_distributed, constant_buffer_names

__all__ = [
    "fit", "predict", "seed_everything", "load_checkpoint", "checkpoint_checksum", "CheckpointError",
    "check_resume_settings", "ResumeSettingsError", "init_distributed", "constant_buffer_names",
]
