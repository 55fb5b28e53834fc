"""Training-step time of a UHKD / OFA-KD student (CIFAR MLP-Mixer 6 x 96, patch 4, batch 64, ResNet-56
teacher) with the teacher run on every batch ("uncached", what the step cost without the cache) vs
the teacher's outputs read from the per-view cache ("cached", the stage's path; the one teacher pass
per view is amortised over every run of the stage and is not in the step).

Not part of the test suite (``addopts`` has ``--benchmark-skip``); run on one core with
``taskset -c 1 pytest benchmarks/test_bench_teacher_cache.py --benchmark-only --benchmark-timer=time.process_time``
(process time, so other processes sharing the core do not inflate the figures). Random images and a
randomly initialised teacher: the cost does not depend on the weights.
"""
import acbench  # noqa: F401  (torchvision shim before transformers)

import itertools

import pytest
import torch

from acbench.experiments.cifar.common import StudentSpec, Teacher, build_student, student_stages
from acbench.experiments.cifar.kd import Distillation, Method, teacher_target
from acbench.experiments.cifar.teacher_outputs import TeacherCache
from acbench.vision.resnet_cifar import resnet_cifar

THREADS, BATCH, IMAGES = 1, 64, 256


@pytest.fixture(scope="module")
def setup():
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (IMAGES, 3, 32, 32), dtype=torch.uint8)
    cache = TeacherCache(Teacher(resnet_cifar(56)), (images, torch.arange(IMAGES) % 10), views=1, augmented=True)
    yield cache
    torch.set_num_threads(previous)


@pytest.mark.parametrize("kind", ["uhkd", "ofa"])
@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
def test_student_step(benchmark, setup, kind, cached):
    cache = setup
    spec = StudentSpec(kind="mixer", depth=6, dim=96)
    torch.manual_seed(0)
    method = Method(name=kind, kind=kind)
    model = Distillation(method, build_student(spec, 10), student_stages(spec), cache.shapes, 10,
                         cache.batch(0, torch.arange(2))[0])
    target = teacher_target(method, model, cache) if cached else None
    if not cached and kind == "uhkd":  # the uncached path runs the method's own teacher-side transform
        model = Distillation(method, build_student(spec, 10), student_stages(spec), cache.shapes, 10,
                             cache.batch(0, torch.arange(2))[0])
    if cached:
        cache.outputs(0, target)  # the view's one teacher pass happens before timing
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = itertools.cycle([torch.arange(i, i + BATCH) for i in range(0, IMAGES, BATCH)])

    def step():
        images, labels, t_feats, t_logits = cache.batch(0, next(batches), target)
        loss, _ = model.loss(images, labels, t_feats, t_logits, 0.5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    benchmark.pedantic(step, rounds=6, warmup_rounds=1)
