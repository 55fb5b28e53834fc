"""The frozen teacher's outputs on fixed augmented views of the training images, computed once per view.

View ``v`` of the training images is a crop + flip of every image drawn from seed ``seed * 7919 + v``;
epoch ``e`` of every run trains on view ``e mod views``, so all methods and seeds of a student see the
same images and the teacher is run at most once per view, i.e. at most once per epoch of one run.

What is kept per view is only what the losses read, never full feature maps:

- the logits (every method);
- for a method whose teacher side is a parameter-free, per-image module (:data:`TEACHER_SIDE`: UHKD's
  frequency transform), that module's output (the small spectra), computed once and passed to the
  method's loss in place of the raw features while its own module is replaced by a pass-through.

A method that reads raw teacher feature maps (FitNet, or any kind not in the table) gets them from
the teacher run on its batch (the teacher's cost once per epoch of that run).

Cached files (``<cache_dir>/cifar_teacher_outputs/<key>-v<view>-<target>.safetensors``, with a
``.sha256`` sidecar verified on read) are keyed like the project's other caches: a digest of the
teacher's weights, the training images (the dataset's declared checksums, the data settings that
pick and augment them), the code that computes them (:func:`acbench.provenance.code_digest` of this
module and the method's module, with the numerics libraries' versions), the target's parameters and
the view. Stages of different students with the same teacher and data share them.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
import torch
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm

from acbench.digest import verify_sidecar
from acbench.provenance import LIBRARIES, code_digest, dataset_digest, text_sha256
from acbench.vision.cifar_tensors import augment, default_cache_dir, normalize, save_atomic

__all__ = ["TEACHER_SIDE", "LOGITS_ONLY", "Passthrough", "TeacherCache", "target_of", "teacher_digest"]

LOGITS_ONLY = frozenset({"none", "kd", "dkd", "ofa"})  # kinds whose loss reads only the teacher's logits
TEACHER_SIDE = {"uhkd": "transform"}  # kind -> attribute of its parameter-free, per-image teacher-side module
SUBDIR = "cifar_teacher_outputs"
LOGITS = "logits"
AUGMENT_CHUNK = 4096


class Passthrough(nn.Module):
    """Stands in for a method's cached teacher-side module: the cached outputs pass through unchanged."""

    def forward(self, feats):
        return list(feats)


def teacher_digest(model: nn.Module) -> str:
    """SHA-256 of the teacher's state dict (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def target_of(kind: str, method_module: nn.Module, params_json: str) -> tuple[str, nn.Module] | None:
    """(target name, teacher-side module) when ``kind``'s teacher side can be cached, else None (the
    method reads raw feature maps: the teacher runs on its batches)."""
    attr = TEACHER_SIDE.get(kind)
    side = getattr(method_module, attr, None) if attr else None
    if not isinstance(side, nn.Module) or any(True for _ in side.parameters()) or any(True for _ in side.buffers()):
        return None
    return f"{kind}-{text_sha256(params_json)[:12]}", side


class TeacherCache:
    """The teacher's outputs on ``views`` fixed augmented views of ``data`` (uint8 images, labels).

    ``batch(view, index)`` gives (normalised images, labels, raw teacher features, logits) with the
    teacher run on the batch; ``batch(view, index, target)`` gives the cached logits and, for a
    ``target`` of :meth:`register`, the cached teacher-side outputs instead of raw features.
    ``cache_dir=None`` keeps everything in memory (tests); otherwise views are written to and read
    from disk, and only the view in use is held in memory.
    """

    def __init__(self, teacher, data: tuple[torch.Tensor, torch.Tensor], views: int, augmented: bool,
                 batch_size: int = 256, seed: int = 0, cache_dir: Path | str | None = None, key_parts=(),
                 dataset: str | None = None):
        if views < 1:
            raise ValueError(f"need at least one view, got {views}")
        self.teacher, (self.images, self.labels) = teacher, data
        self.count, self.augmented, self.batch_size, self.seed = views, augmented, batch_size, seed
        self.folder = None if cache_dir is None else Path(cache_dir) / SUBDIR
        self.targets: dict[str, nn.Module] = {}
        self._code: dict[str, list[Path]] = {}
        self._digests: dict[str, str] = {}
        self._base = {"teacher": teacher_digest(teacher.model), "parts": [str(p) for p in key_parts],
                      "dataset": dataset_digest(dataset) if dataset else None, "n": len(self.labels),
                      "augmented": augmented, "seed": seed, "views": views}
        self._view: tuple[int, torch.Tensor] | None = None
        self._held: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
        self.teacher_images = 0  # images the teacher was run on (cost accounting)
        with torch.no_grad():
            feats, _ = teacher.features(normalize(self.images[:2]))
        self.shapes = [tuple(f.shape[1:]) for f in feats]

    def register(self, name: str, side: nn.Module, code: list[Path]) -> None:
        """Declare a cacheable teacher-side module under ``name``; ``code``: the files that define it."""
        self.targets.setdefault(name, side)
        self._code.setdefault(name, code)

    def key(self, view: int, name: str) -> str:
        if name not in self._digests:
            self._digests[name] = code_digest([Path(__file__), *self._code.get(name, [])], LIBRARIES)
        code = self._digests[name]
        return text_sha256(json.dumps([self._base, code, name, view], sort_keys=True))[:32]

    def view(self, view: int) -> torch.Tensor:
        """The uint8 images of view ``view % views`` (recomputed on a change; one held at a time)."""
        view %= self.count
        if self._view is None or self._view[0] != view:
            images = self.images
            if self.augmented:  # in chunks: augment's gather indices are as large as its output
                generator = torch.Generator().manual_seed(self.seed * 7919 + view)
                images = torch.cat([augment(chunk, generator) for chunk in self.images.split(AUGMENT_CHUNK)])
            self._view = (view, images)
        return self._view[1]

    def _path(self, view: int, name: str) -> Path:
        return self.folder / f"{self.key(view, name)}-v{view}-{name}.safetensors"

    def _compute(self, view: int, names: list[str]) -> dict[str, dict[str, torch.Tensor]]:
        images = self.view(view)
        out: dict[str, dict[str, list[torch.Tensor]]] = {n: {} for n in names}
        with torch.no_grad():
            for start in tqdm(range(0, len(images), self.batch_size), leave=False, mininterval=5,
                              desc=f"teacher outputs, view {view + 1}/{self.count}"):
                feats, logits = self.teacher.features(normalize(images[start:start + self.batch_size]))
                self.teacher_images += len(logits)
                for n in names:
                    parts = {LOGITS: logits} if n == LOGITS else {
                        str(i): t for i, t in enumerate(self.targets[n](feats))}
                    for k, t in parts.items():
                        out[n].setdefault(k, []).append(t)
        return {n: {k: torch.cat(v) for k, v in parts.items()} for n, parts in out.items()}

    def outputs(self, view: int, name: str) -> dict[str, torch.Tensor]:
        """The cached tensors of target ``name`` (or ``"logits"``) on view ``view % views``. A view's
        missing targets are computed together, in one pass of the teacher; on disk, only the view in
        use stays in memory."""
        view %= self.count
        if (view, name) in self._held:
            return self._held[(view, name)]
        wanted = [LOGITS, *self.targets]
        if self.folder is None:
            missing = [n for n in wanted if (view, n) not in self._held]
            self._held.update({(view, n): p for n, p in self._compute(view, missing).items()})
            return self._held[(view, name)]
        self._held = {k: v for k, v in self._held.items() if k[0] == view}
        missing = [n for n in wanted if not self._path(view, n).is_file()]
        if missing:
            for n, payload in self._compute(view, missing).items():
                save_atomic({k: v.contiguous() for k, v in payload.items()}, self._path(view, n))
        path = self._path(view, name)
        verify_sidecar(path, f"delete {path} so the teacher outputs are computed again")
        self._held[(view, name)] = load_file(path)
        return self._held[(view, name)]

    def batch(self, view: int, index: torch.Tensor, target: str | None = None):
        """(normalised images, labels, teacher features or cached target outputs, teacher logits) of
        ``index`` in view ``view % views``; ``target`` ``"logits"``: no features (an empty list)."""
        images, labels = normalize(self.view(view)[index]), self.labels[index]
        if target is None:
            with torch.no_grad():
                feats, logits = self.teacher.features(images)
            self.teacher_images += len(index)
            return images, labels, feats, logits
        logits = self.outputs(view, LOGITS)[LOGITS][index]
        if target == LOGITS:
            return images, labels, [], logits
        cached = self.outputs(view, target)
        return images, labels, [cached[str(i)][index] for i in range(len(cached))], logits

