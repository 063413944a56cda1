"""Peak FLOP/s per accelerator (for MFU) and the CPU's measured matmul FLOP/s."""
from __future__ import annotations

import time

import torch

# Dense (no sparsity) peak FLOP/s from the vendors' data sheets, by dtype.
PEAK_FLOPS = [
    # substring of torch.cuda.get_device_name(), bf16/fp16, fp32 (TF32 where the matmuls use it)
    ("H200", 989e12, 494e12),
    ("H100 PCIe", 756e12, 378e12),
    ("H100 NVL", 835e12, 418e12),
    ("H100", 989e12, 494e12),          # SXM
    ("H800", 989e12, 494e12),
    ("GH200", 989e12, 494e12),
    ("B200", 2250e12, 1100e12),
    ("B100", 1750e12, 875e12),
    ("A100", 312e12, 156e12),
    ("A800", 312e12, 156e12),
    ("A10G", 70e12, 35e12),
    ("A10", 125e12, 62.5e12),
    ("L40S", 362e12, 183e12),
    ("L40", 181e12, 90.5e12),
    ("L4", 121e12, 60e12),
    ("RTX 4090", 165e12, 82.6e12),
    ("RTX 3090", 71e12, 35.6e12),
    ("V100", 125e12, 15.7e12),
    ("T4", 65e12, 8.1e12),
]


def gpu_peak_flops(device_name: str, dtype: torch.dtype = torch.bfloat16) -> float | None:
    """Peak dense FLOP/s of a GPU model, or None when it is not in the table (then MFU is not shown)."""
    for key, half, single in PEAK_FLOPS:
        if key.lower() in device_name.lower():
            return half if dtype in (torch.bfloat16, torch.float16) else single
    return None


def device_peak_flops(device: torch.device, dtype: torch.dtype) -> tuple[float | None, str]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return gpu_peak_flops(name, dtype), name
    return None, "cpu"


def measure_matmul_flops(n: int = 1024, dtype: torch.dtype = torch.float32, seconds: float = 1.0,
                         device: str = "cpu") -> float:
    """Achieved FLOP/s of an n x n @ n x n matmul on this machine (the practical CPU ceiling)."""
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(2):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while True:
        a @ b
        reps += 1
        if device != "cpu":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if dt >= seconds and reps >= 3:
            return 2.0 * n ** 3 * reps / dt
