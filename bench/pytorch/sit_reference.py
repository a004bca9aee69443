#!/usr/bin/env python3
"""PyTorch eager reference for the device check (docs/GPU.md, "The device check").

Our own SiT in plain torch 2.x (written from docs/ARCHITECTURE.md and the C# model in src/MediatorDiT/Models):
patch embedding, fixed 2-D sin-cos positions, timestep and label embedders, adaLN-Zero blocks with full attention
through F.scaled_dot_product_attention or mediator attention as plain torch ops, and the final layer. It times the
same cases as MediatorDiT.GpuCheck on the same card, so the two JSON files can be compared side by side:

  train     SiT-XL/2 training step (forward, backward, AdamW), 32x32x4 latents, batch 64, bf16 autocast
  sample    SiT-XL/2 guided sampling with a 3-model mediator ladder (4, 16, 64), SDE Euler-Maruyama, 250 steps,
            TWO network calls per step (the drift's velocity and the score's, each a guided call on the doubled
            batch, as the authors' SDE sampler makes them); MediatorDiT makes one
  long      SiT-S/2 forward at 4,096 tokens (128x128x4 latents), 64 mediators and full attention
  products  the matrix products of MediatorDiT's SiT-XL/2 training step, shape by shape, read from the
            gpu-check.json MediatorDiT.GpuCheck wrote (--products-from): torch's products on the same shapes

Weights are random (speed does not depend on them). Usage:
  python sit_reference.py --out ref.json                    # on a GPU
  python sit_reference.py --quick --device cpu --out q.json # tiny configs, 2 steps: a smoke test anywhere
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Dense peaks (bf16 tensor cores with fp32 accumulation, fp32 CUDA cores without TF32), FLOP/s, as the C# check's
# DevicePeaks: (name part, name part that must be absent, bf16, fp32); the first match wins; H200's stand in otherwise.
PEAKS = [("H200", "NVL", 989e12, 67e12), ("H100 PCIe", None, 756e12, 51e12), ("H100", "NVL", 989e12, 67e12),
         ("A100", None, 312e12, 19.5e12)]


def peaks_for(device_name):
    """(bf16, fp32, known) dense peaks of the card named device_name."""
    for name, absent, bf16, fp32 in PEAKS:
        if name.lower() in device_name.lower() and not (absent and absent.lower() in device_name.lower()):
            return bf16, fp32, True
    return PEAKS[0][2], PEAKS[0][3], False


SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


def sincos_2d(dim, grid):
    """Fixed (grid*grid, dim) position table: half the channels encode the row, half the column."""
    def one_axis(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1, 1).double() * omega.reshape(1, -1)
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)
    coords = torch.arange(grid, dtype=torch.float64)
    gw, gh = torch.meshgrid(coords, coords, indexing="xy")
    return torch.cat([one_axis(dim // 2, gh), one_axis(dim // 2, gw)], dim=1).float()


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden, freq=256):
        super().__init__()
        self.freq = freq
        self.mlp = nn.Sequential(nn.Linear(freq, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t):
        half = self.freq // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class FullAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v)
        return self.proj(o.transpose(1, 2).reshape(b, n, d))


class MediatorAttention(nn.Module):
    """Mediator attention in plain torch ops: pool q to m mediator tokens, mediators attend to the keys (softmax over
    tokens + position bias), gather V; the queries attend to the mediators (softmax over mediators + bias) and read
    back; plus a 3x3 depthwise conv of V."""

    def __init__(self, dim, heads, mediators, grid):
        super().__init__()
        self.heads, self.m, self.grid = heads, mediators, grid
        self.pool = int(round(math.sqrt(mediators)))
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dwc = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.an_bias = nn.Parameter(torch.zeros(heads, mediators, 7, 7))
        self.na_bias = nn.Parameter(torch.zeros(heads, mediators, 7, 7))
        self.ah_bias = nn.Parameter(torch.zeros(1, heads, mediators, grid, 1))
        self.aw_bias = nn.Parameter(torch.zeros(1, heads, mediators, 1, grid))
        self.ha_bias = nn.Parameter(torch.zeros(1, heads, grid, 1, mediators))
        self.wa_bias = nn.Parameter(torch.zeros(1, heads, 1, grid, mediators))

    def biases(self):
        h, m, g = self.heads, self.m, self.grid
        b1 = F.interpolate(self.an_bias, size=(g, g), mode="bilinear", align_corners=False)
        b1 = (b1.reshape(1, h, m, g, g) + self.ah_bias + self.aw_bias).reshape(1, h, m, g * g)
        b2 = F.interpolate(self.na_bias, size=(g, g), mode="bilinear", align_corners=False)
        b2 = b2.reshape(1, h, m, g * g).permute(0, 1, 3, 2)
        b2 = b2 + (self.ha_bias + self.wa_bias).reshape(1, h, g * g, m)
        return b1, b2

    def forward(self, x):
        b, n, d = x.shape
        h, g = self.heads, self.grid
        q, k, v = self.qkv(x).reshape(b, n, 3, d).unbind(2)
        grid_q = q.transpose(1, 2).reshape(b, d, g, g)
        t = F.adaptive_avg_pool2d(grid_q, self.pool).reshape(b, d, -1).transpose(1, 2)  # (b, m, d)

        def split(z):
            return z.reshape(b, z.shape[1], h, d // h).transpose(1, 2)  # (b, h, tokens, hd)

        qh, kh, vh, th = split(q), split(k), split(v), split(t)
        b1, b2 = self.biases()
        a1 = torch.softmax((th * self.scale) @ kh.transpose(-1, -2) + b1, dim=-1)  # (b, h, m, n)
        vm = a1 @ vh  # (b, h, m, hd)
        a2 = torch.softmax((qh * self.scale) @ th.transpose(-1, -2) + b2, dim=-1)  # (b, h, n, m)
        o = (a2 @ vm).transpose(1, 2).reshape(b, n, d)
        o = o + self.dwc(v.transpose(1, 2).reshape(b, d, g, g)).reshape(b, d, n).transpose(1, 2)
        return self.proj(o)


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, mediators, grid):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = MediatorAttention(dim, heads, mediators, grid) if mediators else FullAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c):
        s1, c1, g1, s2, c2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1.unsqueeze(1) * self.attn(modulate(self.norm1(x), s1, c1))
        return x + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), s2, c2))


class SiT(nn.Module):
    def __init__(self, input_size=32, patch=2, in_channels=4, hidden=1152, depth=28, heads=16, mlp_ratio=4.0,
                 num_classes=1000, learn_sigma=True, mediators=0):
        super().__init__()
        self.in_channels, self.patch, self.num_classes = in_channels, patch, num_classes
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        self.grid = input_size // patch
        self.x_embedder = nn.Conv2d(in_channels, hidden, patch, stride=patch)
        self.t_embedder = TimestepEmbedder(hidden)
        self.y_embedder = nn.Embedding(num_classes + 1, hidden)  # the last row is the null label
        self.register_buffer("pos_embed", sincos_2d(hidden, self.grid).unsqueeze(0), persistent=False)
        self.blocks = nn.ModuleList(Block(hidden, heads, mlp_ratio, mediators, self.grid) for _ in range(depth))
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.final_linear = nn.Linear(hidden, patch * patch * self.out_channels)
        for p in self.parameters():  # random weights: speed does not depend on them
            nn.init.normal_(p, 0.0, 0.02)

    def forward(self, x, t, y):
        b = x.shape[0]
        x = self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for block in self.blocks:
            x = block(x, c)
        shift, scale = self.final_modulation(c).chunk(2, dim=1)
        x = self.final_linear(modulate(self.norm_final(x), shift, scale))
        g, p, co = self.grid, self.patch, self.out_channels
        x = x.reshape(b, g, g, p, p, co).permute(0, 5, 1, 3, 2, 4).reshape(b, co, g * p, g * p)
        return x[:, : self.in_channels]  # learn_sigma: SiT's transport uses the first C channels

    def forward_with_cfg(self, x, t, y, scale, guided=3):
        """Both guidance halves in one doubled batch (rows [:B] conditional, [B:] null label); guided channels only."""
        half = x[: x.shape[0] // 2]
        out = self.forward(torch.cat([half, half]), t, y)
        eps, rest = out[:, :guided], out[:, guided:]
        cond, uncond = eps.chunk(2)
        mixed = uncond + scale * (cond - uncond)
        return torch.cat([torch.cat([mixed, mixed]), rest], dim=1)


def macs_per_image(cfg):
    """Multiply-accumulates per image, the C# FlopCounter's convention (linear layers, attention products, conv)."""
    n, d, p, c = cfg["grid"] ** 2, cfg["hidden"], cfg["patch"], cfg["in_channels"]
    hidden_mlp = int(d * cfg["mlp_ratio"])
    m = cfg["mediators"]
    if m:
        mixing = 4 * n * m * d + n * d * 9 + n * d  # four mediator products, depthwise conv, pooling
    else:
        mixing = 2 * n * n * d
    per_block = 6 * d * d + 3 * n * d * d + mixing + n * d * d + 2 * n * d * hidden_mlp
    return n * c * p * p * d + 256 * d + d * d + cfg["depth"] * per_block + 2 * d * d + n * d * p * p * 2 * c


def config(name, latent, mediators, quick):
    if quick:
        depth, hidden, heads = 1, 32, 2
        latent = min(latent, 16)
        mediators = min(mediators, 4) if mediators else 0
    else:
        depth, hidden, heads = SIZES[name.split("-")[1].split("/")[0]]
    return dict(input_size=latent, patch=2, in_channels=4, hidden=hidden, depth=depth, heads=heads, mlp_ratio=4.0,
                num_classes=1000, mediators=mediators, grid=latent // 2)


def build(cfg, device):
    keys = ("input_size", "patch", "in_channels", "hidden", "depth", "heads", "mlp_ratio", "num_classes", "mediators")
    return SiT(**{k: cfg[k] for k in keys}).to(device)


class Timer:
    def __init__(self, device):
        self.device = device

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run(self, fn, warmup, repeats):
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - start)
        return times


def reset_memory(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device):
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def case_train(args, device, timer, autocast):
    cfg = config("SiT-XL/2", 32, 0, args.quick)
    batch = 2 if args.quick else 64
    model = build(cfg, device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
    x1 = torch.randn(batch, 4, cfg["input_size"], cfg["input_size"], device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    last = {}

    def step():
        x0 = torch.randn_like(x1)
        t = torch.rand(batch, device=device)
        xt = t.view(-1, 1, 1, 1) * x1 + (1 - t.view(-1, 1, 1, 1)) * x0  # linear path, t = 1 is data
        with autocast():
            loss = F.mse_loss(model(xt, t, y).float(), x1 - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last["loss"] = loss.detach()

    times = timer.run(step, 1, 1 if args.quick else 3)
    seconds = statistics.median(times)
    flops = 2 * 3 * macs_per_image(cfg) * batch
    return dict(model=f"SiT depth {cfg['depth']} hidden {cfg['hidden']}, {cfg['input_size']}x{cfg['input_size']}x4, full attention",
                precision=args.precision, batch=batch, step_seconds=times, median_step_seconds=seconds,
                images_per_second=batch / seconds, loss=float(last["loss"]), flops_per_step=flops,
                achieved_flops_per_second=flops / seconds, mfu_of_bf16_peak=flops / seconds / args.peaks[0],
                mfu_of_fp32_peak=flops / seconds / args.peaks[1])


@torch.inference_mode()
def case_sample(args, device, timer, autocast):
    mediators = [1, 4, 16] if args.quick else [4, 16, 64]
    cfgs = [config("SiT-XL/2", 32, m, args.quick) | dict(mediators=m) for m in mediators]
    models = [build(c, device).eval() for c in cfgs]
    batch = args.sample_batch or (2 if args.quick else 16)
    steps = 2 if args.quick else args.sample_steps
    size = cfgs[0]["input_size"]
    y = torch.randint(0, 1000, (batch,), device=device)
    y2 = torch.cat([y, torch.full_like(y, 1000)])
    calls = {"n": 0}

    def network(model, x, t):
        calls["n"] += 1
        with autocast():
            return model.forward_with_cfg(x, t, y2, 4.0).float()

    def sample(n_steps):
        x = torch.randn(batch, 4, size, size, device=device)
        x = torch.cat([x, x])
        t_end = 1 - 0.04  # the last step (a mean step of 0.04) is taken as in the C# sampler
        grid = torch.linspace(0, t_end, n_steps, device=device)
        for i in range(n_steps):
            model = models[min(2, i * 3 // n_steps)]
            t = grid[i]
            dt = (grid[i + 1] - t) if i + 1 < n_steps else torch.tensor(1 - t_end, device=device)
            tt = t.expand(x.shape[0])
            v = network(model, x, tt)  # the drift's velocity
            if i + 1 == n_steps:
                x = x + v * dt  # the last step: the mean, no noise
                break
            v_score = network(model, x, tt)  # the score's velocity: a second call with the same input
            score = -(x - tt.view(-1, 1, 1, 1) * v_score) / (1 - tt.view(-1, 1, 1, 1))
            w = 1 - t  # diffusion coefficient ("sigma" form)
            x = x + (v + 0.5 * w * score) * dt + torch.sqrt(w * dt) * torch.randn_like(x)
        return x

    sample(3)  # warm-up: every model serves a step
    timer.sync()
    calls["n"] = 0
    start = time.perf_counter()
    out = sample(steps)
    timer.sync()
    seconds = time.perf_counter() - start
    per_step = seconds / steps
    return dict(model=f"SiT depth {cfgs[0]['depth']} hidden {cfgs[0]['hidden']}, {size}x{size}x4, ladder {mediators}",
                precision=args.precision, batch=batch, steps_run=steps, network_calls=calls["n"],
                seconds_run=seconds, seconds_per_step=per_step, extrapolated_to_steps=250,
                extrapolated_seconds=per_step * 250, images_per_second=batch / (per_step * 250),
                finite_fraction=float(torch.isfinite(out).float().mean()),
                sampler="SDE Euler-Maruyama, two guided network calls per step (drift and score), switches at 1/3 and 2/3")


@torch.inference_mode()
def case_long(args, device, timer, autocast, mediators):
    cfg = config("SiT-S/2", 128, mediators, args.quick)
    batch = 2 if args.quick else 8
    model = build(cfg, device).eval()
    x = torch.randn(batch, 4, cfg["input_size"], cfg["input_size"], device=device)
    t = torch.rand(batch, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)

    def forward():
        with autocast():
            model(x, t, y)

    times = timer.run(forward, 1, 1 if args.quick else 3)
    seconds = statistics.median(times)
    return dict(model=f"SiT depth {cfg['depth']} hidden {cfg['hidden']}, {cfg['grid'] ** 2} tokens, "
                      + (f"{cfg['mediators']} mediators" if cfg["mediators"] else "full attention (scaled_dot_product_attention)"),
                precision=args.precision, tokens=cfg["grid"] ** 2, batch=batch, forward_seconds=times,
                median_forward_seconds=seconds, images_per_second=batch / seconds,
                achieved_flops_per_second=2 * macs_per_image(cfg) * batch / seconds)


def product_call(shape, a, b, c, fp32_output):
    """One of the recorded products in torch: C = alpha op(A) op(B) (+ C where beta is 1); bf16 operands give fp32
    output through out_dtype where this torch has it (as MediatorDiT's products), else bf16 output."""
    two_d = a.dim() == 2
    alpha = shape["alpha"]
    if shape["beta"] == 0:
        mm = torch.mm if two_d else torch.bmm
        if fp32_output:
            return lambda: mm(a, b, out_dtype=torch.float32)
        return lambda: mm(a, b, out=c)
    addmm = torch.addmm if two_d else torch.baddbmm
    if fp32_output:
        return lambda: addmm(c, a, b, alpha=alpha, out_dtype=torch.float32)
    return lambda: addmm(c, a, b, alpha=alpha, out=c)


def case_products(args, device, timer, autocast):
    if not args.products_from:
        raise ValueError("--products-from names no gpu-check.json to read the products from")
    with open(args.products_from) as fh:
        recorded = json.load(fh)["cases"]["speed_training"]["products"]
    calls_per_run, repeats = (1, 1) if args.quick else (10, 3)
    rows, total_seconds, total_flops = [], 0.0, 0.0
    for shape in recorded["shapes"]:
        bf16 = shape["precision"] == "bf16"
        dtype = torch.bfloat16 if bf16 else torch.float32
        batch, m, n, k = shape["batch"], shape["m"], shape["n"], shape["k"]
        a = torch.ones((batch, k, m) if shape["trans_a"] else (batch, m, k), device=device, dtype=dtype)
        b = torch.ones((batch, n, k) if shape["trans_b"] else (batch, k, n), device=device, dtype=dtype)
        a = a.transpose(1, 2) if shape["trans_a"] else a  # views: the transposes go to the library, as ours
        b = b.transpose(1, 2) if shape["trans_b"] else b
        if batch == 1:
            a, b = a[0], b[0]
        output = "fp32"
        run = None
        if bf16 and shape.get("output") == "bf16":
            output = "bf16"  # recorded with a bf16 output: torch's default for bf16 operands
        elif bf16:
            try:
                run = product_call(shape, a, b, torch.zeros(a.shape[:-1] + b.shape[-1:], device=device), True)
                run()
            except (TypeError, RuntimeError):
                run, output = None, "bf16 (this torch has no out_dtype)"
        if run is None:
            run = product_call(shape, a, b, torch.zeros(a.shape[:-1] + b.shape[-1:], device=device, dtype=dtype), False)

        def runs():
            for _ in range(calls_per_run):
                run()

        per_call = statistics.median(timer.run(runs, 1, repeats)) / calls_per_run
        flops = shape["flops_per_call"]
        total_seconds += per_call * shape["calls"]
        total_flops += flops * shape["calls"]
        rows.append(dict(precision=shape["precision"], trans_a=shape["trans_a"], trans_b=shape["trans_b"], m=m, n=n, k=k, batch=batch,
                         beta=shape["beta"], calls=shape["calls"], output=output, seconds_per_call=per_call,
                         flops_per_second=flops / per_call))
        del a, b, run
    return dict(note=f"torch.mm/bmm/addmm/baddbmm on the shapes MediatorDiT recorded, {calls_per_run} calls per timed run, median of "
                     f"{repeats}; operands of 1.0; bf16 operands, the output as recorded (fp32 through out_dtype where it exists, else bf16)",
                shapes=rows, calls=sum(r["calls"] for r in rows), flops=total_flops, seconds=total_seconds,
                flops_per_second=total_flops / total_seconds if total_seconds else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny configs, 2 steps (a smoke test, e.g. on the cpu)")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16", help="bf16: autocast; fp32: none")
    parser.add_argument("--sample-steps", type=int, default=250)
    parser.add_argument("--sample-batch", type=int, default=0, help="images per sampling batch (default 16; quick 2)")
    parser.add_argument("--budget-seconds", type=float, default=150, help="no case starts after this many seconds")
    parser.add_argument("--cases", default="long_mediator,long_full,sample,train,products")
    parser.add_argument("--products-from", help="gpu-check.json whose speed_training case holds the products to time (case products)")
    args = parser.parse_args()

    device = torch.device(args.device)
    timer = Timer(device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    args.peaks = peaks_for(device_name)
    report = dict(program="bench/pytorch/sit_reference.py", torch=torch.__version__, device=str(device),
                  device_name=device_name,
                  peaks=dict(bf16_flops_per_second=args.peaks[0], fp32_flops_per_second=args.peaks[1], known=args.peaks[2]),
                  quick=args.quick, precision=args.precision,
                  flop_convention="2 FLOPs per multiply-accumulate of linear layers, attention products and convolutions; a training step = 3 forwards",
                  cases={})
    runs = {
        "long_mediator": lambda: case_long(args, device, timer, autocast, 64),
        "long_full": lambda: case_long(args, device, timer, autocast, 0),
        "sample": lambda: case_sample(args, device, timer, autocast),
        "train": lambda: case_train(args, device, timer, autocast),
        "products": lambda: case_products(args, device, timer, autocast),
    }
    start = time.perf_counter()
    for name in args.cases.split(","):
        if time.perf_counter() - start > args.budget_seconds:
            report["cases"][name] = dict(status="skipped", error=f"the time budget of {args.budget_seconds:.0f} s was spent")
            continue
        print(f"[{time.perf_counter() - start:6.1f}s] {name}: start", flush=True)
        reset_memory(device)
        case_start = time.perf_counter()
        try:
            entry = runs[name]()
            entry["status"] = "ok"
            entry["peak_memory_bytes"] = peak_memory(device)
        except Exception as e:  # one failing case must not stop the others
            entry = dict(status="failed", error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        entry["seconds"] = time.perf_counter() - case_start
        report["cases"][name] = entry
        print(f"[{time.perf_counter() - start:6.1f}s] {name}: {json.dumps(entry)}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    m, f = report["cases"].get("long_mediator", {}), report["cases"].get("long_full", {})
    if m.get("status") == "ok" and f.get("status") == "ok":
        report["long_forward_mediator_speedup"] = m["images_per_second"] / f["images_per_second"]
    report["total_seconds"] = time.perf_counter() - start
    with open(args.out, "w") as fh:
        json.dump(report, fh, indent=2)
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
