"""One layer-wise AdaMerging step in PyTorch on the CPU: the baseline of bench/figures/adamerging_step.ts.

It reads the model, task vectors, heads, inputs and lambda that the bench wrote (one safetensors file) and
does what core/merge/adamerging/gradient.ts does: theta(lambda) = theta0 + sum_k clamp(lambda_k^l, 0, 1)
tau_k^l for every tensor l, the CLIP vision forward of each task's batch, its head (normalised embedding,
logit scale), the mean softmax entropy per task, and the backward pass to lambda. It times the step at each
thread count asked for and prints JSON: the times, and the first step's losses and gradient (the bench
checks that both sides computed the same numbers).

    python3 bench/reference/adamerging_step.py IN.safetensors [--steps 5] [--threads 1,2]

torch is not a mergeflow dependency: `pip install torch` (CPU wheels: --index-url
https://download.pytorch.org/whl/cpu).
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from safetensors import safe_open

VM = "vision_model"


def activation(x, act):
    if act == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    if act == "gelu":
        return F.gelu(x)
    return F.gelu(x, approximate="tanh")  # gelu_new, gelu_pytorch_tanh


def layer_norm(x, p, name, eps):
    return F.layer_norm(x, (x.shape[-1],), p[f"{name}.weight"], p[f"{name}.bias"], eps)


def attention(x, p, prefix, c):
    n, t, d = x.shape
    h = c["numAttentionHeads"]
    hd = d // h

    def proj(name, y):
        return F.linear(y, p[f"{prefix}.self_attn.{name}.weight"], p[f"{prefix}.self_attn.{name}.bias"])

    def heads(y):
        return y.reshape(n, t, h, hd).transpose(1, 2)

    q = heads(proj("q_proj", x) * hd**-0.5)
    k = heads(proj("k_proj", x))
    v = heads(proj("v_proj", x))
    probs = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
    ctx = (probs @ v).transpose(1, 2).reshape(n, t, d)
    return proj("out_proj", ctx)


def clip_vision_forward(p, c, x):
    """Projected image embeddings [N, projection_dim], as transformers' CLIPVisionModelWithProjection."""
    n = x.shape[0]
    d = c["hiddenSize"]
    eps = c["layerNormEps"]
    patches = F.conv2d(x, p[f"{VM}.embeddings.patch_embedding.weight"], stride=c["patchSize"])
    patches = patches.flatten(2).transpose(1, 2)  # [N, g*g, D]
    cls = p[f"{VM}.embeddings.class_embedding"].reshape(1, 1, d).expand(n, 1, d)
    h = torch.cat([cls, patches], 1) + p[f"{VM}.embeddings.position_embedding.weight"].unsqueeze(0)
    h = layer_norm(h, p, f"{VM}.pre_layrnorm", eps)
    for i in range(c["numHiddenLayers"]):
        pre = f"{VM}.encoder.layers.{i}"
        h = h + attention(layer_norm(h, p, f"{pre}.layer_norm1", eps), p, pre, c)
        m = layer_norm(h, p, f"{pre}.layer_norm2", eps)
        m = activation(F.linear(m, p[f"{pre}.mlp.fc1.weight"], p[f"{pre}.mlp.fc1.bias"]), c["hiddenAct"])
        h = h + F.linear(m, p[f"{pre}.mlp.fc2.weight"], p[f"{pre}.mlp.fc2.bias"])
    pooled = layer_norm(h[:, 0], p, f"{VM}.post_layernorm", eps)
    return pooled @ p["visual_projection.weight"].T


def mean_entropy(logits):
    logp = torch.log_softmax(logits, dim=1)
    return -(logp.exp() * logp).sum(1).mean()


def load(path):
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        t = {k: f.get_tensor(k) for k in f.keys()}
    return json.loads(meta["config"]), json.loads(meta["tensors"]), t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", default="1")
    a = ap.parse_args()
    torch.set_num_interop_threads(1)
    config, names, t = load(a.input)
    K, L = t["lambda"].shape
    theta0 = {n: t[f"theta0.{n}"] for n in names}
    tau = [t[f"tau.{n}"].reshape(K, -1) for n in names]  # [K, n_l]
    heads = [
        (t[f"heads.{k}.weight"], t[f"heads.{k}.logit_scale"].exp(), t.get(f"heads.{k}.bias"))
        for k in range(K)
    ]
    inputs = t["inputs"]  # [K, B, C, H, W]

    def logits(k, emb):
        w, scale, bias = heads[k]
        z = scale * F.normalize(emb, dim=1) @ w.T
        return z if bias is None else z + bias

    def step(lam):
        lam.grad = None
        coef = lam.clamp(0, 1)  # [K, L]
        merged = {n: theta0[n] + (coef[:, l] @ tau[l]).reshape(theta0[n].shape) for l, n in enumerate(names)}
        losses = []
        for k in range(K):
            losses.append(mean_entropy(logits(k, clip_vision_forward(merged, config, inputs[k]))))
        torch.stack(losses).sum().backward()
        return [float(x) for x in losses], lam.grad.flatten().tolist()

    out = {"torch": torch.__version__, "runs": []}
    for threads in [int(x) for x in a.threads.split(",")]:
        torch.set_num_threads(threads)
        lam = t["lambda"].clone().requires_grad_(True)
        losses, grad = step(lam)  # warm-up, and the numbers to compare
        out.setdefault("loss_per_task", losses)
        out.setdefault("grad", grad)
        secs = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            step(lam)
            secs.append(time.perf_counter() - t0)
        out["runs"].append({"threads": threads, "seconds": secs, "median": statistics.median(secs)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
