"""UHKD's loss terms at initialisation, per reading, on a fixed batch (the measurement behind the
pre-registered reading in replications/uhkd/README.md).

Teacher: the mirror's CIFAR-10 ResNet-56 (not fine-tuned); batch: the first 260 training images of a
class-stratified subset, one augmented view; students: the cpu-profile ViT, MLP-Mixer and ResNet-20 at
initialisation (seed 0). Prints CE, KD, the unweighted frequency term, the weight the rule sets, the
largest single-bin share of the term and each stage's share. Usage (from the repository root, data
root set): ``python scripts/uhkd_init_scales.py``.
"""
from __future__ import annotations

import torch

from acbench.experiments.cifar.common import CifarData, StudentSpec, Teacher, build_student, student_stages
from acbench.experiments.cifar.kd import Distillation, Method, TeacherCache
from acbench.vision.resnet_cifar import load_resnet_cifar
from acbench.vision.students import features_and_logits
from methods.uhkd import bin_shares

READINGS = {"uhkd_today": dict(spectrum_norm="none", feature_weight_rule="fixed"),
            "uhkd": dict(spectrum_norm="teacher_bin_rms", feature_weight_rule="ce_at_init"),
            "uhkd_phase": dict(freq_mode="realimag", spectrum_norm="teacher_bin_rms", feature_weight_rule="ce_at_init")}
STUDENTS = {"vit": StudentSpec(kind="vit", depth=6, dim=96, heads=3, patch=4),
            "mixer": StudentSpec(kind="mixer", depth=6, dim=96, patch=4),
            "resnet20": StudentSpec(kind="resnet", depth=20)}


def main() -> None:
    torch.set_num_threads(1)
    cache = TeacherCache(Teacher(load_resnet_cifar(56)), CifarData(train_limit=260).load("train"), views=1,
                         augmented=True)
    batch = cache.batch(0, torch.arange(len(cache.labels)))
    for student_name, spec in STUDENTS.items():
        for name, reading in READINGS.items():
            torch.manual_seed(0)
            method = Method(name=name, kind="uhkd", ce_weight=1.0, kd_weight=1.0, temperature=1.0, crop=4, **reading)
            model = Distillation(method, build_student(spec, 10), student_stages(spec), cache.shapes, 10,
                                 batch[0][:2], label_smoothing=0.1)
            calibration = model.calibrate(*batch)
            with torch.no_grad():
                feats, _ = features_and_logits(model.student, batch[0], model.stages)
                shares = bin_shares(*model.uhkd.representations(feats, batch[2]))
                _, logs = model.loss(*batch, progress=0.0)
            print(f"{student_name:8s} {name:10s} CE {logs['ce']:.3f}  KD {logs['kd']:.3f}  term {logs['feature']:.3f}  "
                  f"weight {calibration['feature_weight']:.3f}  largest bin {float(shares.max()):.3f}  "
                  f"stages {[round(float(x), 3) for x in shares.sum((1, 2))]}")


if __name__ == "__main__":
    main()
