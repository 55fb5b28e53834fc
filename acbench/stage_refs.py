"""Config fields that name another stage whose outputs a stage reads (its upstream stages).

A stage config marks such a field with one of two types, so the engine finds every upstream stage
from the config alone (for run keys and for the pipeline's deps), wherever the field sits:

- ``SiblingStage``: a stage of the same replication (``teacher_stage: asdiv_teacher``);
- ``StageRef``: ``<replication>/<stage>``, possibly of another replication
  (``teacher: dynamic_head_pruning_kd/asdiv_teacher``).
"""
from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field

STAGE_NAME = r"[a-z0-9_]+"


class _Upstream:
    """Marker in a field's ``Annotated`` metadata: the field's value names an upstream stage."""

    def __init__(self, qualified: bool):
        self.qualified = qualified

    def __repr__(self) -> str:
        return f"Upstream(qualified={self.qualified})"


SIBLING = _Upstream(qualified=False)
QUALIFIED = _Upstream(qualified=True)

SiblingStage = Annotated[str, Field(pattern=rf"^{STAGE_NAME}$"), SIBLING]
StageRef = Annotated[str, Field(pattern=rf"^{STAGE_NAME}/{STAGE_NAME}$",
                                description="<replication>/<stage>"), QUALIFIED]


def upstream_stages(config: BaseModel, replication: str) -> list[tuple[str, str]]:
    """``(replication, stage)`` of every stage that ``config`` names through a marked field, in first-seen order."""
    found: list[tuple[str, str]] = []
    _walk_model(config, replication, found)
    return list(dict.fromkeys(found))


def _walk_model(model: BaseModel, replication: str, found: list) -> None:
    for name, field in type(model).model_fields.items():
        _walk(field.annotation, list(field.metadata), getattr(model, name), replication, found)


def _walk(annotation: Any, metadata: list, value: Any, replication: str, found: list) -> None:
    if value is None:
        return
    marker = next((m for m in metadata if isinstance(m, _Upstream)), None)
    if marker is not None and isinstance(value, str):
        found.append(tuple(value.split("/", 1)) if marker.qualified else (replication, value))
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        _walk(args[0], list(args[1:]), value, replication, found)
    elif origin in (Union, types.UnionType):
        for arm in args:
            _walk(arm, [], value, replication, found)
    elif origin in (list, tuple, set, frozenset) and args:
        for item in value:
            _walk(args[0], [], item, replication, found)
    elif origin is dict and len(args) == 2:
        for item in value.values():
            _walk(args[1], [], item, replication, found)
    elif isinstance(value, BaseModel) and isinstance(annotation, type) and isinstance(value, annotation):
        _walk_model(value, replication, found)
