"""Methods by name: each method module registers itself under a family and a name, with its own
parameter schema (a pydantic model; unknown keys are errors).

A replication's ``params.yaml`` names a method (``kind: dkd``) and gives its parameters beside the
name; the engine looks the name up here and validates the parameters against the method's schema.
A new method is one module in ``methods/`` that calls :func:`register`: every module of this
package is imported on the first lookup that misses, so no list elsewhere names it.

Families (what the registered object must provide is documented where the family is used):

- ``image_kd``: distillation losses between classifier students and a CNN teacher
  (``acbench.experiments.cifar.kd``): logit KD, DKD, FitNet, OFA-KD, UHKD, cross-entropy only;
- ``attention_alignment``: losses between a student's and a teacher's attention (maps or Q/K/V) of
  transformer encoders: TinyBERT attention MSE, MiniLM (with and without value relation), MiniLMv2;
- ``head_importance``: head-importance scores a pruning run ranks heads by.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, ValidationError

FAMILIES = {"image_kd": "image distillation method", "attention_alignment": "alignment loss",
            "head_importance": "head-importance score"}  # family -> what one member is called in messages


class MethodParams(BaseModel):
    """Base of every method's parameter schema: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(MethodParams):
    """A method without parameters."""


@dataclass(frozen=True)
class Method:
    family: str
    name: str
    params: type[MethodParams]
    impl: Any
    module: str


class UnknownMethod(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0])


_REGISTRY: dict[str, dict[str, Method]] = {family: {} for family in FAMILIES}
_discovered = False


def register(family: str, name: str, params: type[MethodParams] = NoParams) -> Callable[[Any], Any]:
    """Decorator: register the decorated class or function as method ``name`` of ``family``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown method family {family!r} (families: {list(FAMILIES)})")
    if not (isinstance(params, type) and issubclass(params, MethodParams)):
        raise TypeError(f"{family}/{name}: params must be a subclass of methods.registry.MethodParams")

    def add(impl: Any) -> Any:
        known = _REGISTRY[family].get(name)
        if known is not None and known.module != impl.__module__:
            raise ValueError(f"{family} method {name!r} registered twice: in {known.module} and {impl.__module__}")
        _REGISTRY[family][name] = Method(family, name, params, impl, impl.__module__)
        return impl
    return add


def _discover() -> None:
    """Import every module of the ``methods`` package once (each registers what it defines)."""
    global _discovered
    if _discovered:
        return
    import methods

    for info in sorted(pkgutil.iter_modules(methods.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"methods.{info.name}")
    _discovered = True


def names(family: str) -> list[str]:
    _discover()
    return sorted(_REGISTRY[family])


def lookup(family: str, name: str) -> Method:
    if family not in FAMILIES:
        raise ValueError(f"unknown method family {family!r} (families: {list(FAMILIES)})")
    if name not in _REGISTRY[family]:
        _discover()
    if name not in _REGISTRY[family]:
        raise UnknownMethod(f"unknown {FAMILIES[family]} {name!r} (known: {', '.join(names(family))}; "
                            f"a new one is a module in methods/ that calls methods.registry.register)")
    return _REGISTRY[family][name]


def parse_params(family: str, name: str, values: dict[str, Any]) -> MethodParams:
    """Validate ``values`` against the schema of ``name``; a ValueError names each bad field."""
    method = lookup(family, name)
    try:
        return method.params.model_validate(values)
    except ValidationError as err:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(all)'}: {e['msg']}" for e in err.errors())
        allowed = ", ".join(method.params.model_fields) or "none"
        raise ValueError(f"{FAMILIES[family]} {name!r}: {fields} (its parameters: {allowed})") from None
