"""Reading JSON/text source files for loaders, with errors that name the file and record."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acbench.data.errors import DataError, show

REFETCH = ("the file does not match what the loader expects: restore the original file "
           "(see the dataset's declaration) together with its declared checksum")


def read_json_list(path: Path) -> list[dict]:
    """A JSON file holding a list of objects."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{show(path)}: not valid UTF-8 JSON ({exc}); {REFETCH}") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{show(path)}: expected a JSON list of objects; {REFETCH}")
    return data


def field(record: dict, key: str, path: Path, index: int, id_key: str | None = None) -> str:
    """``record[key]`` as a non-empty string, else a DataError naming the file and record."""
    value: Any = record.get(key)
    if isinstance(value, str) and value.strip():
        return value
    which = f"record {index}" + (f" ({id_key}={record.get(id_key)!r})" if id_key else "")
    problem = f"has no {key!r} field" if key not in record else f"has {key}={value!r}, expected a non-empty string"
    raise DataError(f"{show(path)}: {which} {problem}; {REFETCH}")


def unique_ids(ids: list[str], path: Path) -> None:
    """Raise DataError when ``ids`` (read from ``path``) has duplicates."""
    seen: set[str] = set()
    dupes = sorted({i for i in ids if i in seen or seen.add(i)})
    if dupes:
        raise DataError(f"{show(path)}: duplicate ids {dupes[:5]}; {REFETCH}")


def read_id_list(path: Path, known: set[str], known_from: Path) -> set[str]:
    """Ids, one per line, from ``path``; each must be in ``known`` (the ids of ``known_from``)."""
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    unique_ids(ids, path)
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise DataError(f"{show(path)}: {len(unknown)} ids are not in {show(known_from)} "
                        f"(first: {unknown[0]!r}); {REFETCH}")
    return set(ids)
