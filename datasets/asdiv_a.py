"""ASDiv-A loader: train/valid/test and the 5-fold cross-validation files (see asdiv_a.yaml)."""
from __future__ import annotations

from acbench.data import MWPProblem
from acbench.data.records import field, read_json_list, unique_ids


def load(split, files, *, fold, declaration) -> list[MWPProblem]:
    """Problems of ``split`` (``trainset.json``...), or of fold ``fold`` (``trainset_fold{fold}.json``...)."""
    path = files[f"{split}set.json" if fold is None else f"{split}set_fold{fold}.json"]
    problems = [
        MWPProblem(
            id=field(r, "@ID", path, i),
            dataset=declaration.name,
            text=field(r, "Body", path, i, "@ID") + " " + field(r, "Question", path, i, "@ID"),
            equation=field(r, "Formula", path, i, "@ID"),
            answer=field(r, "Answer", path, i, "@ID"),
        )
        for i, r in enumerate(read_json_list(path))
    ]
    unique_ids([p.id for p in problems], path)
    return problems
