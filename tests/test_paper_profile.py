"""The ``paper`` profile's code path on CPU: every paper stage config validates, and each engine
experiment and stage module runs its paper config (hub encoders RoBERTa / Chinese BERT, CIFAR-100
with OFA-KD's released ConvNeXt-T teacher and its timm students at 224 × 224) with local stand-ins and the smoke scale
(see paper_standins.py). One stage per distinct code path runs here; the rest of the paper stages
differ from these only in ratios and variants, which the smoke pipeline runs. The attention-distillation
students run on a second stand-in hub whose roberta-base is as deep as roberta-base (12 layers, 12 heads;
their 6- and 3-layer paper students need a teacher at least that deep). Not here: the DeiT-T and
ResMLP-S12 students (the CIFAR-100 path runs with the ResNet18 one; tests/test_uhkd_paper_profile.py
takes a step on the others), and the UHKD stage's methods other than OFA-KD and UHKD (each method's loss
takes a step at the paper shapes in tests/test_uhkd_paper_profile.py)."""
from __future__ import annotations

import json
import math

import pytest

import paper_standins as standins
from acbench.config import list_replications, load_replication, validate
from acbench.experiments import get_experiment
from acbench.solver.encoders import HUB_DIR_ENV, pretrained_dir
from data_fixtures import data_root  # noqa: F401

CHAIN = [  # dependency order
    ("dynamic_head_pruning_kd", "efficiency"),
    ("dynamic_head_pruning_kd", "asdiv_teacher"),     # hub:roberta-base (BPE tokenizer)
    ("dynamic_head_pruning_kd", "math23k_teacher"),   # hub:hfl/chinese-roberta-wwm-ext (WordPiece, Chinese)
    ("dynamic_head_pruning_kd", "asdiv_prune"),
    ("dynamic_head_pruning_kd", "asdiv_gating"),      # per-input gating on RoBERTa attention blocks
    ("dynamic_head_pruning_kd", "asdiv_r30"),
    ("dynamic_head_pruning_kd", "asdiv_teacher_fold1"),  # the pruning curve reads all five folds' teachers
    ("dynamic_head_pruning_kd", "asdiv_teacher_fold2"),
    ("dynamic_head_pruning_kd", "asdiv_teacher_fold3"),
    ("dynamic_head_pruning_kd", "asdiv_teacher_fold4"),
    ("attention_distillation", "pruning_curve"),
    ("uhkd", "teacher"),                              # CIFAR-100, OFA-KD's ConvNeXt-T release (a stand-in)
    ("uhkd", "resnet20"),                             # cifar.kd: timm ResNet18 at 224, 100 classes, OFA-KD and UHKD
]
# The stage's code path is the same for every method; each method's loss at the paper shapes has its own
# test (tests/test_uhkd_paper_profile.py), so the chain trains the verdict pair only.
CHAIN_METHODS = {("uhkd", "resnet20"): ("ofa", "uhkd")}


def test_every_paper_stage_config_validates():
    for name in list_replications():
        rep = load_replication(name, validate_stages=False)
        for stage in rep.params.stages:
            rep.stage_config(stage, "paper")  # raises ConfigError naming the field
            validate(type(rep.stage_config(stage, "paper")), standins.shrunk_paper_config(rep, stage),
                     rep.params_path, f"paper(shrunk).{stage}")


def _paper_runner(tmp, patch: pytest.MonkeyPatch, roberta_depth: bool = False):
    """``run(name, stage)``: the stage's shrunk paper config run once under ``tmp``, its metrics.json."""
    import acbench.experiments.cifar.common as cifar_common

    patch.setenv(HUB_DIR_ENV, str(standins.make_hub(tmp / "hub", roberta_depth)))
    patch.setenv("HF_HUB_OFFLINE", "1")
    patch.setattr(cifar_common, "load_split", standins.fake_cifar)
    uhkd_teacher = load_replication("uhkd", validate_stages=False).stage_config("teacher", "paper")
    patch.setenv("ACBENCH_CACHE_DIR", str(standins.make_release_cache(tmp / "cache", uhkd_teacher.release_url,
                                                                      uhkd_teacher.model.name)))
    done: dict[tuple[str, str], dict] = {}

    def run(name: str, stage: str) -> dict:
        if (name, stage) not in done:
            rep = load_replication(name, validate_stages=False)
            module = get_experiment(rep.name, rep.params.stages[stage])
            raw = standins.shrunk_paper_config(rep, stage)
            if (name, stage) in CHAIN_METHODS:
                keep = CHAIN_METHODS[(name, stage)]
                raw.update(methods=[m for m in raw["methods"] if m["name"] in keep],
                           baselines=[b for b in raw.get("baselines", []) if b in keep])
            config = validate(module.Config, raw, rep.params_path, stage)
            out = tmp / "results" / "paper" / name / stage
            module.run(config, out)
            done[(name, stage)] = json.loads((out / "metrics.json").read_text())
        return done[(name, stage)]
    return run


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory, data_root):  # noqa: F811
    patch = pytest.MonkeyPatch()
    yield _paper_runner(tmp_path_factory.mktemp("paper"), patch)
    patch.undo()


@pytest.fixture(scope="module")
def deep_paper_run(tmp_path_factory, data_root):  # noqa: F811
    """As ``paper_run``, its roberta-base stand-in as deep as roberta-base (12 layers, 12 heads)."""
    patch = pytest.MonkeyPatch()
    yield _paper_runner(tmp_path_factory.mktemp("paper_deep"), patch, roberta_depth=True)
    patch.undo()


@pytest.mark.slow
@pytest.mark.parametrize("name,stage", CHAIN, ids=[f"{n}/{s}" for n, s in CHAIN])
def test_paper_stage_runs_on_cpu_with_standins(paper_run, name, stage):
    for dep in CHAIN[:CHAIN.index((name, stage))]:
        paper_run(*dep)
    metrics = paper_run(name, stage)["metrics"]
    assert metrics and all(math.isfinite(v) for v in metrics.values())


@pytest.mark.slow
def test_paper_teachers_use_the_paper_encoders_and_classes(paper_run):
    for dep in CHAIN[:CHAIN.index(("uhkd", "teacher")) + 1]:
        paper_run(*dep)
    assert paper_run("dynamic_head_pruning_kd", "asdiv_teacher")["metrics"]["input_vocab"] > 100  # BPE vocab
    assert paper_run("uhkd", "teacher")["metrics"]["test_images"] == 20  # CIFAR-100 stand-in, smoke scale


def test_hub_dir_without_the_model_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv(HUB_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=f"{tmp_path}/roberta-base: no config.json for hub:roberta-base"):
        pretrained_dir("hub:roberta-base")
    monkeypatch.delenv(HUB_DIR_ENV)
    assert pretrained_dir("hub:roberta-base") == "roberta-base"


@pytest.mark.slow
def test_paper_6x192_students_distil_from_a_roberta_deep_teacher(deep_paper_run):
    deep_paper_run("dynamic_head_pruning_kd", "asdiv_teacher")
    result = deep_paper_run("attention_distillation", "students_6x192_f0")
    metrics = result["metrics"]
    assert metrics and all(math.isfinite(v) for v in metrics.values())
    assert set(result["meta"]["runs"]) == {"minilm-s0", "no_distillation-s0"}  # the smoke profile's losses
    assert metrics["student.encoder_params"] > metrics["teacher.encoder_params"]  # the paper's 6 x 192 shape kept


@pytest.mark.slow
def test_paper_3x384_students_run_on_a_roberta_deep_teacher(deep_paper_run):
    deep_paper_run("dynamic_head_pruning_kd", "asdiv_teacher")
    metrics = deep_paper_run("attention_distillation", "students_3x384_f0")["metrics"]
    assert metrics and all(math.isfinite(v) for v in metrics.values())
