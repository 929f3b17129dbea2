"""Write golden fixtures for the TypeScript CLIP vision transformer (test/models-vit.test.ts).

For several small random-weight CLIP vision models, writes test/fixtures/vit/<name>/:
  config.json, model.safetensors   the Hugging Face folder (save_pretrained, safe serialization)
  inputs.safetensors               pixel_values [N, C, H, W] float32
  expected.safetensors             image_embeds [N, projection_dim] float32, from transformers

Run once by hand (CI has no Python; the fixtures are committed):
  pip install torch transformers safetensors numpy
  python scripts/golden/make_vit_golden.py
The committed fixtures were made with transformers 5.24.0 and torch 2.15.0 (CPU). Seeds are fixed, so a rerun
with the same versions rewrites identical files.
"""

import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModelWithProjection

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "test", "fixtures", "vit")

# name -> (CLIPVisionConfig kwargs, number of images). Kept tiny: the whole folder stays well under 2 MB.
CONFIGS = {
    # ViT with quick_gelu (CLIP's own activation), 8x8 patches.
    "tiny_p8": (dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                     image_size=32, patch_size=8, projection_dim=16), 3),
    # Exact (erf) gelu, 16x16 patches, more heads and layers.
    "gelu_p16": (dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                      image_size=48, patch_size=16, projection_dim=24, hidden_act="gelu"), 2),
    # Wide single layer, many small patches, 8 heads of width 8.
    "wide_p4": (dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=8,
                     image_size=28, patch_size=4, projection_dim=32), 2),
    # Image size not a multiple of the patch (trailing pixels dropped), one channel, tanh gelu,
    # odd intermediate size, non-default layer_norm_eps.
    "odd_p7_gray": (dict(hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=3,
                         image_size=30, patch_size=7, num_channels=1, projection_dim=8,
                         hidden_act="gelu_new", layer_norm_eps=1e-6), 2),
}

# A full CLIPModel (text + vision): its config.json is a CLIPConfig with "vision_config".
FULL_CLIP = ("full_clip", dict(hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
                                image_size=24, patch_size=12), 2)


def randomize(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Weights with O(1) activations so every parameter visibly affects the output (HF init makes
    biases zero, norms identity and attention nearly uniform)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_norm1.weight") or name.endswith("layer_norm2.weight") or "layrnorm.weight" in name \
                    or "layernorm.weight" in name or "final_layer_norm.weight" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias") or name.endswith("class_embedding") or "position_embedding" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith("logit_scale"):
                continue
            else:
                fan_in = p[0].numel() if p.dim() > 1 else p.numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)


def write_case(name: str, model: torch.nn.Module, config: CLIPVisionConfig, n: int, gen: torch.Generator,
               embed) -> None:
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, safe_serialization=True)
    pixels = torch.randn(n, config.num_channels, config.image_size, config.image_size, generator=gen)
    with torch.no_grad():
        out = embed(model, pixels).float().contiguous()
    save_file({"pixel_values": pixels.contiguous()}, os.path.join(folder, "inputs.safetensors"))
    save_file({"image_embeds": out}, os.path.join(folder, "expected.safetensors"))
    print(f"{name}: image_embeds {list(out.shape)}, |max| {out.abs().max().item():.3f}")


def main() -> int:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    os.makedirs(OUT, exist_ok=True)
    for name, (kwargs, n) in CONFIGS.items():
        config = CLIPVisionConfig(**kwargs)
        model = CLIPVisionModelWithProjection(config).eval()
        randomize(model, gen)
        write_case(name, model, config, n, gen, lambda m, x: m(pixel_values=x).image_embeds)

    name, vkw, n = FULL_CLIP
    text = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=2)
    config = CLIPConfig(text_config=text, vision_config=vkw, projection_dim=12)
    model = CLIPModel(config).eval()
    randomize(model, gen)

    def features(m, x):
        out = m.get_image_features(pixel_values=x)
        # Newer transformers return a model output here; older ones a tensor.
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        by_hand = m.visual_projection(m.vision_model(pixel_values=x).pooler_output)
        assert torch.allclose(out, by_hand), "get_image_features should be visual_projection(pooled output)"
        return out

    write_case(name, model, config.vision_config, n, gen, features)
    with open(os.path.join(OUT, name, "config.json")) as f:
        assert "vision_config" in json.load(f), "full CLIP config.json should hold a vision_config"

    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"total fixture size: {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
