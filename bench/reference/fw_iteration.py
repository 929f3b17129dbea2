"""One FW-Hard iteration in PyTorch on the CPU: the baseline of bench/figures/fw_iteration.ts.

It reads what the bench wrote (one safetensors file: theta_t, the candidates' full weights, the heads, each
target's proxy rows and labels) and does what core/merge/frank_wolfe does in one task-wise FW-Hard iteration
with the "TA" local merge: the cross-entropy objective f = sum_j mean CE_j / S at theta_t and its gradient g
over every merged tensor; the oracle's score of each candidate m, sum_p cos(g_p, theta_{m,p}); the most
negative wins; theta_{t+1} = theta_t + a (theta_s - theta_t). Every candidate is held in memory here. It times
the iteration (always from the same theta_t) and prints JSON: the times, and the first iteration's losses,
scores and pick, which the bench compares with its own.

    python3 bench/reference/fw_iteration.py IN.safetensors [--iterations 5] [--threads 1]

torch is not a mergeflow dependency (see adamerging_step.py).
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adamerging_step import clip_vision_forward  # noqa: E402  the same CLIP vision forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_interop_threads(1)
    torch.set_num_threads(a.threads)
    with safe_open(a.input, framework="pt") as f:
        meta = f.metadata()
        t = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(meta["config"])
    names = json.loads(meta["tensors"])
    candidates = json.loads(meta["candidates"])
    targets = json.loads(meta["targets"])
    coef = float(meta["a"])
    S = float(meta["scale_tasks"])
    theta0 = {n: t[f"theta.{n}"] for n in names}
    cands = [{n: t[f"cand.{m}.{n}"] for n in names} for m in range(len(candidates))]

    def logits(j, emb):
        z = t[f"heads.{j}.logit_scale"].exp() * F.normalize(emb, dim=1) @ t[f"heads.{j}.weight"].T
        bias = t.get(f"heads.{j}.bias")
        return z if bias is None else z + bias

    def iteration():
        theta = {n: v.clone().requires_grad_(True) for n, v in theta0.items()}
        losses = []
        for j in range(len(targets)):
            x, y = t[f"inputs.{j}"], t[f"labels.{j}"].long()
            losses.append(F.cross_entropy(logits(j, clip_vision_forward(theta, config, x)), y) / S)
        torch.stack(losses).sum().backward()
        with torch.no_grad():
            g = [theta[n].grad.flatten().double() for n in names]
            gn = [x.norm() for x in g]
            scores = []
            for c in cands:
                s = 0.0
                for p, n in enumerate(names):
                    v = c[n].flatten().double()
                    d = gn[p] * v.norm()
                    s += float(g[p] @ v / d) if d > 0 else 0.0
                scores.append(s)
            pick = min(range(len(scores)), key=lambda m: scores[m])
            new = {n: theta0[n] + coef * (cands[pick][n] - theta0[n]) for n in names}
        return [float(x) for x in losses], scores, candidates[pick], new

    losses, scores, pick, _ = iteration()  # warm-up, and the numbers to compare
    secs = []
    for _ in range(a.iterations):
        t0 = time.perf_counter()
        iteration()
        secs.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "threads": a.threads,
                "seconds": secs,
                "median": statistics.median(secs),
                "loss_per_target": losses,
                "scores": scores,
                "pick": pick,
            }
        )
    )


if __name__ == "__main__":
    main()
