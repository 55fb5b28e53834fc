"""The CNN teacher of the CIFAR distillation: a CIFAR ResNet checkpoint, scored, fine-tuned on our copy, scored again.

The mirror's ResNet checkpoints were trained on the original PNG CIFAR-10; on the JPEG copy they lose
about 10 points, so the teacher is fine-tuned on the JPEG training images first (``init:
checkpoint``). ``init: scratch`` trains the same network from random weights (the ``paper`` profile's
CIFAR-100, for which no checkpoint exists). Writes the teacher (safetensors + JSON) to the stage's
checkpoint folder and ``metrics.json`` with the accuracy before and after. With ``data.valid_size`` the
validation images held out for the students are left out of the fine-tuning too (recorded under
``meta.data_split``).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from acbench.config import Strict
from acbench.experiments.cifar.common import CifarData, Collate, evaluate_items, save_teacher
from acbench.experiments.stage_io import checkpoint_dir
from acbench.items import ItemLog
from acbench.provenance import run_key
from acbench.results import write_metrics
from acbench.training import TrainSettings, train
from acbench.vision.resnet_cifar import load_resnet_cifar, resnet_cifar

CHECKPOINTS = "model"  # the fine-tuned teacher, read by the student stages
ITEMS = True  # per-item records under items/ (acbench.items)


class Config(Strict):
    depth: int = Field(56, ge=8)
    init: Literal["checkpoint", "scratch"] = "checkpoint"
    data: CifarData = CifarData()
    train: TrainSettings
    eval_batch: int = Field(256, ge=1)
    threads: int | None = Field(None, ge=1)


def run(config: Config, out_dir: Path) -> dict[str, float]:
    if config.threads:
        torch.set_num_threads(config.threads)
    started = time.perf_counter()
    train_set, test_set = config.data.load("train"), config.data.load("test")
    torch.manual_seed(config.train.seed)
    if config.init == "checkpoint":
        if config.data.num_classes != 10:
            raise ValueError("the mirror's ResNet checkpoints are CIFAR-10 models: use init: scratch for CIFAR-100")
        model = load_resnet_cifar(config.depth)
    else:
        model = resnet_cifar(config.depth, config.data.num_classes)
    items = ItemLog()
    before = evaluate_items(model, test_set, config.eval_batch, "teacher before")
    items.add_outcomes("before", before)
    metrics: dict[str, float] = {"accuracy_before": before.accuracy}

    def loss_fn(module, batch, step):
        images, labels = batch
        return F.cross_entropy(module(images), labels), {}

    folder = checkpoint_dir(out_dir)
    result = train(model, list(range(len(train_set[0]))), Collate(train_set, config.train.seed, config.data.augment),
                   loss_fn, config.train, folder / "training", desc=f"teacher ResNet-{config.depth}",
                   run_key=run_key(config))
    after = evaluate_items(model, test_set, config.eval_batch, "teacher after")
    items.add_outcomes("test", after)
    metrics["accuracy"] = after.accuracy
    save_teacher(folder, model, {"depth": config.depth, "num_classes": config.data.num_classes,
                                 "data": config.data.model_dump(mode="json")})
    shutil.rmtree(folder / "training", ignore_errors=True)
    metrics.update({"train_images": len(train_set[0]), "test_images": len(test_set[0]), "steps": result.steps,
                    "train_seconds": result.seconds, "stage_seconds": time.perf_counter() - started,
                    "final_loss": sum(result.losses[-20:]) / len(result.losses[-20:])})
    write_metrics(out_dir, metrics, ["train_images", "test_images", "steps"],
                  {"loss_curve": result.losses, "data_split": config.data.split_record()}, items.write(out_dir))
    return metrics
