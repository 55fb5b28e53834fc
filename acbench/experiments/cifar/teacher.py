"""The teacher of the CIFAR distillation: a CIFAR ResNet checkpoint, scored, fine-tuned on our copy, scored again.

The mirror's ResNet checkpoints were trained on the original PNG CIFAR-10; on the JPEG copy they lose
about 10 points, so the teacher is fine-tuned on the JPEG training images first (``init:
checkpoint``). ``init: scratch`` trains the same network from random weights. With ``model``, a timm
architecture is the teacher instead (:mod:`acbench.vision.timm_models`); ``init: release`` loads a
released checkpoint of it from ``release_url`` (OFA-KD's CIFAR-100 teachers, for the ``paper``
profile: downloaded once into the data cache, its SHA-256 checked against ``release_sha256`` when
given and recorded either way) and, without ``train``, only scores it. Writes the teacher
(safetensors + JSON) to the stage's checkpoint folder and ``metrics.json`` with the accuracy before
and after. With ``data.valid_size`` the
validation images held out for the students are left out of the fine-tuning too (recorded under
``meta.data_split``).
"""
from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from acbench.config import Strict
from acbench.data.mirror import cache_dir
from acbench.errors import AcbenchError
from acbench.experiments.cifar.common import CifarData, Collate, evaluate_items, save_teacher
from acbench.experiments.stage_io import checkpoint_dir
from acbench.items import ItemLog
from acbench.provenance import run_key
from acbench.results import write_metrics
from acbench.training import TrainSettings, train
from acbench.vision.resnet_cifar import load_resnet_cifar, resnet_cifar
from acbench.vision.timm_models import TimmSpec, timm_model

CHECKPOINTS = "model"  # the fine-tuned teacher, read by the student stages
ITEMS = True  # per-item records under items/ (acbench.items)


class ReleaseMismatch(AcbenchError):
    """A downloaded teacher checkpoint does not have the configured SHA-256."""


class Config(Strict):
    depth: int = Field(56, ge=8, description="the CIFAR ResNet's depth (when model is None)")
    model: TimmSpec | None = Field(None, description="a timm architecture as the teacher instead of the CIFAR ResNet")
    init: Literal["checkpoint", "scratch", "release"] = "checkpoint"
    release_url: str | None = Field(None, description="init release: where the trained teacher's weights are")
    release_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="init release: the expected "
                                       "SHA-256 of that file (None: not yet known; recorded from the download)")
    data: CifarData = CifarData()
    train: TrainSettings | None = Field(None, description="fine-tuning (None: score the initial model only; "
                                        "init release only)")
    eval_batch: int = Field(256, ge=1)
    threads: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _consistent(self):
        if self.init == "release" and (self.model is None or not self.release_url):
            raise ValueError("init release needs model (a timm architecture) and release_url")
        if self.init != "release" and self.train is None:
            raise ValueError(f"init {self.init} trains the teacher: set train")
        if self.init == "checkpoint" and self.model is not None:
            raise ValueError("init checkpoint reads the mirror's CIFAR ResNets: drop model, or use init "
                             "release / scratch")
        return self


def fetch_release(url: str, sha256: str | None) -> tuple[Path, str]:
    """(local copy of ``url`` in the data cache, its SHA-256); downloaded once, checked when ``sha256`` is set."""
    target = cache_dir() / "teachers" / Path(urlparse(url).path).name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        torch.hub.download_url_to_file(url, str(partial), progress=True)
        partial.replace(target)
    digest = hashlib.sha256()
    with target.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    actual = digest.hexdigest()
    if sha256 is not None and actual != sha256:
        raise ReleaseMismatch(f"{target}: SHA-256 {actual} is not the configured {sha256}; delete it and "
                              f"re-run to download {url} again, or fix release_sha256")
    return target, actual


def build_teacher(config: Config) -> tuple[torch.nn.Module, dict]:
    """(the initial teacher, what its weights are: recorded in the metrics)."""
    classes = config.data.num_classes
    if config.init == "release":
        path, sha = fetch_release(config.release_url, config.release_sha256)
        weights = {"url": config.release_url, "sha256": sha}
        return timm_model(config.model, classes, checkpoint_path=str(path)), weights
    if config.model is not None:
        return timm_model(config.model, classes), {"init": "timm_imagenet" if config.model.pretrained else "scratch"}
    if config.init == "checkpoint":
        if classes != 10:
            raise ValueError("the mirror's ResNet checkpoints are CIFAR-10 models: use init: scratch for CIFAR-100")
        return load_resnet_cifar(config.depth), {"init": "mirror"}
    return resnet_cifar(config.depth, classes), {"init": "scratch"}


def run(config: Config, out_dir: Path) -> dict[str, float]:
    if config.threads:
        torch.set_num_threads(config.threads)
    started = time.perf_counter()
    train_set, test_set = config.data.load("train"), config.data.load("test")
    torch.manual_seed(config.train.seed if config.train else 0)
    model, weights = build_teacher(config)
    items = ItemLog()
    before = evaluate_items(model, test_set, config.eval_batch, "teacher before")
    items.add_outcomes("before", before)
    metrics: dict[str, float] = {"accuracy_before": before.accuracy}

    def loss_fn(module, batch, step):
        images, labels = batch
        return F.cross_entropy(module(images), labels), {}

    folder = checkpoint_dir(out_dir)
    name = config.model.name if config.model else f"ResNet-{config.depth}"
    extra: dict = {"data_split": config.data.split_record(), "weights": weights}
    if config.train is not None:
        batches = Collate(train_set, config.train.seed, config.data.augment)
        result = train(model, list(range(len(train_set[0]))), batches, loss_fn, config.train, folder / "training",
                       desc=f"teacher {name}", run_key=run_key(config))
        after = evaluate_items(model, test_set, config.eval_batch, "teacher after")
        metrics.update({"steps": result.steps, "train_seconds": result.seconds,
                        "final_loss": sum(result.losses[-20:]) / len(result.losses[-20:])})
        extra["loss_curve"] = result.losses
    else:
        after = before
    items.add_outcomes("test", after)
    metrics["accuracy"] = after.accuracy
    save_teacher(folder, model, {"depth": config.depth, "num_classes": config.data.num_classes,
                                 "model": config.model.model_dump(mode="json") if config.model else None,
                                 "data": config.data.model_dump(mode="json")})
    shutil.rmtree(folder / "training", ignore_errors=True)
    metrics.update({"train_images": len(train_set[0]), "test_images": len(test_set[0]),
                    "stage_seconds": time.perf_counter() - started})
    deterministic = ["train_images", "test_images"] + (["steps"] if config.train is not None else [])
    write_metrics(out_dir, metrics, deterministic, extra, items.write(out_dir))
    return metrics
