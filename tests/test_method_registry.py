"""Methods by name: registration, discovery of a new module, schemas validated on load with errors
naming the file and the field, and the registered losses computing what the old branches computed."""
import shutil
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

import methods
from acbench.config import ConfigError, load_replication
from methods import registry
from methods.logit_kd import kd_kl_loss

REAL_ROOT = Path(__file__).resolve().parent.parent


def test_every_family_lists_its_methods():
    assert registry.names("image_kd") == ["dkd", "fitnet", "kd", "none", "ofa", "uhkd"]
    assert registry.names("attention_alignment") == ["attention_mse", "minilm", "minilm_no_vr", "minilmv2"]
    assert registry.names("head_importance") == ["combined", "entropy", "michel", "random", "weight_norm"]


def test_a_new_module_is_found_by_name_without_any_list_naming_it(tmp_path, monkeypatch):
    (tmp_path / "toy_kd_for_test.py").write_text(
        "from methods.registry import MethodParams, register\n"
        "class ToyParams(MethodParams):\n    scale: float = 2.0\n"
        "@register('image_kd', 'toy_for_test', ToyParams)\n"
        "class Toy:\n    pass\n")
    monkeypatch.setattr(methods, "__path__", [*methods.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_discovered", False)
    try:
        found = registry.lookup("image_kd", "toy_for_test")
        assert found.module == "methods.toy_kd_for_test"
        assert registry.parse_params("image_kd", "toy_for_test", {"scale": 3}).scale == 3.0
    finally:
        registry._REGISTRY["image_kd"].pop("toy_for_test", None)
        sys.modules.pop("methods.toy_kd_for_test", None)


def test_unknown_method_and_foreign_parameter_are_errors_naming_them():
    with pytest.raises(registry.UnknownMethod, match="unknown image distillation method 'dist'.*known: dkd"):
        registry.lookup("image_kd", "dist")
    with pytest.raises(ValueError, match="'kd': crop: Extra inputs are not permitted.*ce_weight, kd_weight, temperature"):
        registry.parse_params("image_kd", "kd", {"crop": 4})


@pytest.fixture
def uhkd_copy(tmp_path, monkeypatch):
    dst = tmp_path / "replications" / "uhkd"
    dst.mkdir(parents=True)
    for name in ("params.yaml", "published.yaml"):
        shutil.copy(REAL_ROOT / "replications" / "uhkd" / name, dst / name)
    monkeypatch.setenv("ACBENCH_REPO_ROOT", str(tmp_path))
    return dst / "params.yaml"


def _set_methods(params_path: Path, entries: list[dict]) -> None:
    text = params_path.read_text()
    data = yaml.safe_load(text)
    data["common"]["vit"]["methods"] = entries
    params_path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("entry, field, message", [
    ({"name": "dist", "kind": "dist"}, "methods.0", "unknown image distillation method 'dist'"),
    ({"name": "kd", "kind": "kd", "dkd_beta": 2.0}, "methods.0", "dkd_beta: Extra inputs are not permitted"),
    ({"name": "dkd", "kind": "dkd", "temperature": -1}, "methods.0", "temperature: Input should be greater than 0"),
])
def test_params_yaml_method_errors_name_file_and_field(uhkd_copy, entry, field, message):
    _set_methods(uhkd_copy, [entry])
    with pytest.raises(ConfigError) as err:
        load_replication("uhkd")
    text = str(err.value)
    assert str(uhkd_copy) in text and f"profiles.smoke.vit.{field}" in text and message in text


def test_the_registered_kd_loss_is_the_weighted_sum_the_stage_used_to_compute():
    from acbench.experiments.cifar.kd import Distillation, Method
    from acbench.vision.resnet_cifar import resnet_cifar

    torch.manual_seed(0)
    student = resnet_cifar(8)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    t_logits = torch.randn(4, 10)
    method = Method(name="kd", kind="kd", ce_weight=0.3, kd_weight=0.7, temperature=2.0)
    model = Distillation(method, student, [0, 1, 2], [(16, 32, 32), (32, 16, 16), (64, 8, 8)], 10, images[:2])
    loss, logs = model.loss(images, labels, None, t_logits, 0.5)
    logits = student(images)
    expected = 0.3 * F.cross_entropy(logits, labels) + 0.7 * kd_kl_loss(logits, t_logits, 2.0)
    assert torch.equal(loss, expected)
    assert set(logs) == {"ce", "kd"}


def test_a_stage_depends_on_the_method_modules_its_config_names_and_no_others():
    """No import statement links cifar.kd to methods/dkd.py (the registry finds it by name): the
    stage's code closure, and so its run key and its DVC deps, must still contain it."""
    from acbench.provenance import display, stage_inputs

    def methods_of(replication, stage):
        return {display(p) for p in stage_inputs(replication, stage).code.modules if display(p).startswith("methods/")}

    vit = methods_of("uhkd", "vit")
    assert {"methods/dkd.py", "methods/fitnet.py", "methods/ofa.py", "methods/uhkd.py", "methods/logit_kd.py"} <= vit
    assert not vit & {"methods/minilm.py", "methods/minilmv2.py", "methods/tinybert.py"}
    students = methods_of("attention_distillation", "students_3x384_f0")
    assert {"methods/minilm.py", "methods/minilmv2.py", "methods/tinybert.py"} <= students
    assert "methods/uhkd.py" not in students


def test_importance_settings_take_the_scores_own_parameters_and_compute_what_they_did():
    from acbench.solver.importance import ImportanceSettings, scores
    from methods.head_importance import combined_score, normalize_per_layer, weight_norms
    from transformers import BertConfig, BertModel

    with pytest.raises(ValueError, match="head-importance score 'michel': alpha: Extra inputs"):
        ImportanceSettings(kind="michel", alpha=0.3)
    with pytest.raises(ValueError, match="unknown head-importance score 'fisher'"):
        ImportanceSettings(kind="fisher")
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                   vocab_size=50, attn_implementation="eager"))
    entropy, grad = torch.rand(2, 4), torch.rand(2, 4)
    combined = ImportanceSettings(kind="combined", alpha=0.3, norm_p=1.0, normalize="l2")
    assert torch.equal(scores(combined, encoder, entropy, grad),
                       combined_score(weight_norms(encoder, 1.0), entropy, 0.3, -1, "l2"))
    assert combined.needs_attentions and not combined.needs_gate_grad
    assert torch.equal(scores(ImportanceSettings(kind="michel"), encoder, entropy, grad), normalize_per_layer(grad, "l2"))
    assert scores(ImportanceSettings(kind="random"), encoder, entropy, grad) is None
    assert ImportanceSettings(kind="random").random_order and ImportanceSettings(kind="michel").needs_gate_grad
