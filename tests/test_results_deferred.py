"""A stage's results are written together at its end: a failure or Ctrl-C leaves the old files byte-identical."""
import pytest

from acbench.results import deferred_writes, write_metrics, write_text_atomic


def _committed(folder):
    write_metrics(folder, {"accuracy": 1.0}, [], {})
    write_text_atomic(folder / "table.md", "old table\n")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("interrupt", [RuntimeError("stage failed"), KeyboardInterrupt()])
def test_an_interrupted_stage_leaves_its_results_byte_identical(tmp_path, interrupt):
    before = _committed(tmp_path)
    with pytest.raises(type(interrupt)):
        with deferred_writes(tmp_path):
            write_text_atomic(tmp_path / "table.md", "new table\n")
            write_metrics(tmp_path, {"accuracy": 2.0}, [], {})
            raise interrupt
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary files either


def test_a_finished_stage_replaces_its_results_together(tmp_path):
    _committed(tmp_path)
    with deferred_writes(tmp_path):
        write_text_atomic(tmp_path / "table.md", "new table\n")
        write_text_atomic(tmp_path / "table.md", "newer table\n")
        assert (tmp_path / "table.md").read_text() == "old table\n"
    assert (tmp_path / "table.md").read_text() == "newer table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "table.md"]


def test_writes_outside_the_stage_folder_are_not_held_back(tmp_path):
    (tmp_path / "stage").mkdir()
    with pytest.raises(RuntimeError), deferred_writes(tmp_path / "stage"):
        write_text_atomic(tmp_path / "runs" / "kd-s0.json", "{}")  # a finished-run record survives a later failure
        raise RuntimeError
    assert (tmp_path / "runs" / "kd-s0.json").read_text() == "{}"


def test_leftovers_of_a_killed_stage_are_removed_on_the_next_run(tmp_path):
    (tmp_path / ".metrics.json.abc.tmp").write_text("half")
    with deferred_writes(tmp_path):
        pass
    assert not list(tmp_path.iterdir())
