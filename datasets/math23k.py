"""Math23k loader: Math_23K.json plus the standard valid/test id lists (see math23k.yaml)."""
from __future__ import annotations

from acbench.data import DataError, MWPProblem
from acbench.data.errors import show
from acbench.data.records import field, read_id_list, read_json_list, unique_ids

DATA, TEST_IDS, VALID_IDS = "Math_23K.json", "test_ids.txt", "valid_ids.txt"


def load(split, files, *, fold, declaration) -> list[MWPProblem]:
    """Problems of ``split`` (train, valid, test, trainvalid, all) in Math_23K.json order."""
    path = files[DATA]
    problems = [
        MWPProblem(
            id=field(r, "id", path, i),
            dataset=declaration.name,
            text=field(r, "original_text", path, i, "id"),
            equation=field(r, "equation", path, i, "id"),
            answer=field(r, "ans", path, i, "id"),
        )
        for i, r in enumerate(read_json_list(path))
    ]
    known = [p.id for p in problems]
    unique_ids(known, path)
    if split == "all":
        return problems

    def ids(name: str) -> set[str]:
        return read_id_list(files[name], set(known), path)

    if split in ("test", "valid"):
        keep = ids(TEST_IDS if split == "test" else VALID_IDS)
        return [p for p in problems if p.id in keep]
    held_out = ids(TEST_IDS)
    if split == "train":
        valid = ids(VALID_IDS)
        if held_out & valid:
            raise DataError(f"{show(files[TEST_IDS])} and {show(files[VALID_IDS])} share "
                            f"{len(held_out & valid)} ids; restore the original id lists")
        held_out |= valid
    return [p for p in problems if p.id not in held_out]
