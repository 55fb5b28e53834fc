"""The training loop shared by every replication: settings, checkpoints, distributed set-up."""
from acbench.training.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from acbench.training.distributed import DistContext, distributed_context
from acbench.training.loop import PlateauSettings, TrainingDiverged, TrainSettings, train

__all__ = ["CheckpointError", "DistContext", "PlateauSettings", "TrainSettings", "TrainingDiverged", "distributed_context",
           "latest_checkpoint", "load_checkpoint", "save_checkpoint", "train"]
