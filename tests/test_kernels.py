"""Kernel hosts of rectlab.kernels: tilings, launch chunks, packed masks, the RNG, interpreter loading.

The op-level correctness against the reference lives in ``test_fused.py``; here each kernel host is
driven through its knobs (block size, launch chunk, tiling) and must give the same result every way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from rectlab.kernels import _layout

_fastdiv = None  # set by test_fastdiv_is_exact

try:  # the kernels below are decorated inside the tests, under the mode the `dev` fixture sets
    import triton
    import triton.language as tl
except ImportError:
    triton = tl = None

def _load(family: str):
    from rectlab import kernels

    return kernels.load(family)


# ----------------------------------------------------------------------------------------------------
# Layout and launch planning (no kernels run)
# ----------------------------------------------------------------------------------------------------


def test_is_dense_and_channel_geometry() -> None:
    x = torch.empty(2, 3, 5, 7)
    cl = x.to(memory_format=torch.channels_last)
    assert _layout.is_dense(x) and _layout.is_dense(cl) and _layout.is_dense(x.transpose(1, 3))
    assert not _layout.is_dense(x[..., ::2]) and not _layout.is_dense(torch.empty(3, 1).expand(3, 4))
    assert _layout.is_dense(torch.empty(4, 1, 6)[:, :, :])  # size-1 dims do not matter
    assert _layout.channel_geometry(x, 1, True) == (3, 35)
    assert _layout.channel_geometry(cl, 1, True) == (3, 1)
    assert _layout.channel_geometry(torch.empty(4, 5, 6), -1, True) == (6, 1)
    assert _layout.channel_geometry(x, 1, False) == (1, 1)
    assert _layout.same_layout(cl, torch.empty_like(cl)) and not _layout.same_layout(cl, x)
    g = _layout.like_layout(torch.randn(2, 3, 5, 7), cl)
    assert g.stride() == cl.stride()


@pytest.mark.triton
def test_chunks_are_aligned_and_cover_everything() -> None:
    from rectlab.kernels._common import chunks

    assert list(chunks(5000, 3, max_chunk=10**9)) == [(0, 5000)]
    pieces = list(chunks(100_000, 3 * 35, max_chunk=30_000))
    assert sum(n for _, n in pieces) == 100_000
    step = np.lcm(3 * 35, 8)
    assert all(s % step == 0 and n <= 30_000 for s, n in pieces)
    assert [s for s, _ in pieces] == sorted({s for s, _ in pieces})
    with pytest.raises(NotImplementedError, match="backend='torch'"):
        list(chunks(10**6, 5001, max_chunk=4096))


@pytest.mark.triton
@pytest.mark.parametrize(
    "shape, channels_last, per_channel",
    [
        ((128, 64, 112, 112), False, True),  # DESIGN.md's benchmark shape, NCHW: planes
        ((128, 64, 112, 112), True, True),  # channels_last: rows
        ((1, 64, 112, 112), False, True),  # batch 1
        ((512, 64, 8, 8), False, True),  # CIFAR's last stage
        ((16, 1024, 768), False, True),  # (N, L, C) with dim=-1 -> inner 1
        ((128, 64, 112, 112), False, False),  # shared
    ],
)
def test_reduce_plan_keeps_the_partial_buffer_small(shape, channels_last, per_channel) -> None:
    from rectlab.kernels._common import reduce_plan

    x = torch.empty(shape, device="meta")
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    dim = 1 if len(shape) == 4 else -1
    C, inner = _layout.channel_geometry(x, dim, per_channel)
    plan = reduce_plan(x.numel(), C, inner)
    partial = plan.partial_shape[0] * plan.partial_shape[1]
    assert partial <= 300_000 and partial <= x.numel() // 16, (plan, partial)  # 1.2 MB at most
    # the grid covers the matrix
    if plan.kind == "planes":
        assert plan.grid[0] * plan.tile_r >= plan.rows and plan.grid[1] * plan.tile_w >= plan.width
    else:
        assert plan.grid[0] * plan.rows_per_program >= plan.rows and plan.grid[1] * plan.tile_w >= plan.width
    assert plan.rows * plan.width == x.numel()


@pytest.mark.triton
def test_kernels_use_only_triton_builtins() -> None:
    """``@triton.jit`` library functions (tl.sum, tl.zeros, tl.sigmoid, tl.rand ...) are fixed to one mode
    when triton is imported; the kernels avoid them so that TRITON_INTERPRET works whatever came first."""
    import re
    from pathlib import Path

    import triton.language as tl
    from triton.runtime.jit import JITFunction

    import rectlab.kernels

    used: set[str] = set()
    for path in Path(rectlab.kernels.__file__).parent.glob("*.py"):
        code = "\n".join(line.split("#")[0] for line in path.read_text().splitlines())  # not in comments
        code = re.sub(r'"""[\s\S]*?"""', "", code)  # nor in docstrings
        used |= set(re.findall(r"\btl\.([\w.]+)", code))
    jitted = []
    for name in sorted(used - {"standard._sum_combine"}):  # a combine function the interpreter special-cases
        obj = tl
        for part in name.split("."):
            obj = getattr(obj, part)
        if isinstance(obj, JITFunction):
            jitted.append(name)
    assert not jitted, f"kernels call @triton.jit library functions: {jitted}"


def test_fastdiv_is_exact(dev: str) -> None:
    """The magic-number division that gives PReLU / Swish their channel index matches ``//``."""
    _load("elementwise")  # builds _common for this mode
    from rectlab.kernels import _common

    global _fastdiv  # kernels see module globals, not closures
    _fastdiv = _common._fastdiv

    def divide(n_ptr, out_ptr, magic, shift, N: tl.constexpr):
        offs = tl.arange(0, N)
        tl.store(out_ptr + offs, _fastdiv(tl.load(n_ptr + offs), magic, shift))

    kernel = triton.jit(divide)
    n = torch.randint(0, 2**31 - 1, (4096,), dtype=torch.int32)
    n[:6] = torch.tensor([0, 1, 2**31 - 1, 2**30, 2**30 - 1, 12544 * 64 - 1])
    n = n.to(dev)
    for d in (1, 2, 3, 7, 35, 49, 64, 96, 3136, 12544, 802816, 2**20 + 1, 2**31 - 1):
        out = torch.empty_like(n)
        kernel[(1,)](n, out, *_common.magic_divisor(d), N=4096)
        assert torch.equal(out, n // d), d


def _compile_sm90(fn, signature: dict[str, str], constexprs: dict, aligned: tuple[str, ...], num_warps: int) -> str:
    """Compile ``fn`` ahead of time for an H100 (sm_90) with the installed Triton; return its PTX."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = list(signature)
    attrs = {(names.index(a),): [["tt.divisibility", 16]] for a in aligned}  # as the JIT marks aligned pointers
    src = ASTSource(fn, signature, constexprs=constexprs, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps}).asm["ptx"]


@pytest.mark.triton
@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the compiled kernels run in every other test")
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_kernels_compile_for_h100(monkeypatch: pytest.MonkeyPatch, dtype: str) -> None:
    """Without a GPU, compile every kernel for sm_90 (Triton's full pipeline down to PTX and cubin) so that
    compiled-mode errors the interpreter would not see show up here; and check two properties of the PTX:
    128-bit vector loads for aligned tensors, and no integer division per element in the flat forwards."""
    import re

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    ek, pk, sk, rk = (_load(f) for f in ("elementwise", "prelu", "swish", "rrelu"))
    t = f"*{dtype}"
    scalars = {"p0": "fp32", "p1": "fp32"}
    flags = ("OP", "SAVE_MASK", "BLOCK")
    for op in ek.OPS:
        save = op in ek.MASK_OPS
        sig = {"x_ptr": t, "y_ptr": t, "mask_ptr": "*u8", "n": "i32", **scalars, **dict.fromkeys(flags, "constexpr")}
        ptx = _compile_sm90(ek._elementwise_fwd_kernel, sig, {"OP": op, "SAVE_MASK": save, "BLOCK": 2048},
                            ("x_ptr", "y_ptr", "n"), 8)  # fmt: skip
        assert re.search(r"ld\.global(\.\w+)*\.v4", ptx), op
        sig = {"g_ptr": t, "saved_ptr": "*u8" if save else t, "dx_ptr": t, "n": "i32", **scalars,
               **dict.fromkeys(("OP", "FROM_MASK", "BLOCK"), "constexpr")}  # fmt: skip
        _compile_sm90(ek._elementwise_bwd_kernel, sig, {"OP": op, "FROM_MASK": save, "BLOCK": 2048}, ("g_ptr", "n"), 8)
    magic = dict.fromkeys(("C", "inner_magic", "inner_shift", "c_magic", "c_shift"), "i32")
    for k, param, extra in ((pk._prelu_fwd_kernel, "w_ptr", {"mask_ptr": "*u8"}), (sk._swish_fwd_kernel, "b_ptr", {})):
        sig = {"x_ptr": t, param: "*fp32", "y_ptr": t, **extra, "n": "i32", **magic}
        const = {"BLOCK": 2048} | ({"SAVE_MASK": True} if extra else {})
        sig |= dict.fromkeys(const, "constexpr")
        ptx = _compile_sm90(k, sig, const, ("x_ptr", "y_ptr", "n"), 8)
        assert not re.search(r"(div|rem)\.[su](32|64)", ptx), "integer division per element in a flat forward"
    tiled = {"rows": "i32", "width": "i32"}
    prelu_flags = {"HAS_DX": True, "HAS_DW": True, "FROM_MASK": False}
    swish_flags = {"HAS_DX": True, "HAS_DB": True}
    backward = [  # kernel, leading pointer arguments, kind-specific scalars, flags
        (pk._prelu_bwd_planes_kernel, ("g_ptr", "saved_ptr", "w_ptr"), {"C": "i32"}, prelu_flags),
        (pk._prelu_bwd_rows_kernel, ("g_ptr", "saved_ptr", "w_ptr"), {"inner": "i32", "rows_per_program": "i32"},
         prelu_flags),
        (sk._swish_bwd_planes_kernel, ("g_ptr", "x_ptr", "b_ptr"), {"C": "i32"}, swish_flags),
        (sk._swish_bwd_rows_kernel, ("g_ptr", "x_ptr", "b_ptr"), {"inner": "i32", "rows_per_program": "i32"},
         swish_flags),
    ]  # fmt: skip
    for kernel, (g, x, param), scalars_, flags_ in backward:
        planes = "C" in scalars_
        sig = {g: t, x: t, param: "*fp32", "dx_ptr": t, "partial_ptr": "*fp32", **tiled, **scalars_}
        const = flags_ | ({"TILE_R": 2, "TILE_W": 1024} if planes else {"TILE_R": 32, "TILE_W": 64})
        sig |= dict.fromkeys(const, "constexpr")
        _compile_sm90(kernel, sig, const, (g, x, "dx_ptr", "width"), 8 if planes else 4)
    rr = {"seed_ptr": "*i64", "n": "i32", "counter0": "i32", "lower": "fp32", "upper": "fp32"}
    sig = {"x_ptr": t, "y_ptr": t, "mask_ptr": "*u8", **rr, "SAVE_MASK": "constexpr", "BLOCK": "constexpr"}
    _compile_sm90(rk._rrelu_fwd_kernel, sig, {"SAVE_MASK": True, "BLOCK": 2048}, ("x_ptr", "y_ptr", "n"), 8)
    sig = {"g_ptr": t, "saved_ptr": "*u8", "dx_ptr": t, **rr, "FROM_MASK": "constexpr", "BLOCK": "constexpr"}
    _compile_sm90(rk._rrelu_bwd_kernel, sig, {"FROM_MASK": True, "BLOCK": 2048}, ("g_ptr", "dx_ptr", "n"), 8)


# ----------------------------------------------------------------------------------------------------
# Kernels under every knob
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["relu", "leaky_relu", "helu", "gelu_tanh", "mish"])
def test_elementwise_blocks_and_chunks_agree(dev: str, op: str) -> None:
    ek = _load("elementwise")
    x = torch.randn(5003, device=dev)
    g = torch.randn(5003, device=dev)
    save = op in ek.MASK_OPS
    y, mask = ek.forward(x, op, 0.1, 0.0, save_mask=save)
    dx = ek.backward(g, x, op, 0.1, 0.0)
    for block, max_chunk in ((64, 1 << 30), (256, 2048), (1024, 1024)):
        y2, mask2 = ek.forward(x, op, 0.1, 0.0, save_mask=save, block=block, max_chunk=max_chunk)
        assert torch.equal(y2, y) and torch.equal(mask2, mask)
        assert torch.equal(ek.backward(g, x, op, 0.1, 0.0, block=block, max_chunk=max_chunk), dx)
        if save:
            assert torch.equal(ek.backward(g, mask, op, 0.1, 0.0, from_mask=True, block=block, max_chunk=max_chunk), dx)


def test_mask_is_little_endian_packbits(dev: str) -> None:
    ek = _load("elementwise")
    x = torch.randn(1003, device=dev)
    x[:5] = torch.tensor([0.0, -0.0, 1.0, -1.0, -0.04])
    _, relu_mask = ek.forward(x, "relu", save_mask=True, block=64)
    _, helu_mask = ek.forward(x, "helu", 0.05, save_mask=True)
    bits = (x > 0).cpu().numpy()
    assert relu_mask.cpu().numpy().tobytes() == np.packbits(bits, bitorder="little").tobytes()
    helu_bits = (x > -0.05).cpu().numpy()
    assert helu_mask.cpu().numpy().tobytes() == np.packbits(helu_bits, bitorder="little").tobytes()
    assert relu_mask.numel() == (1003 + 7) // 8


@pytest.mark.parametrize("family", ["prelu", "swish"])
@pytest.mark.parametrize(
    "shape, channels_last, dim",
    [((3, 4, 9, 10), False, 1), ((3, 4, 9, 10), True, 1), ((50, 7, 3), False, -1), ((6, 5, 40), False, 1)],
)
def test_channel_backward_tilings_agree(dev: str, family: str, shape, channels_last: bool, dim: int) -> None:
    k = _load(family)
    x = torch.randn(shape, device=dev)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    g = torch.randn_like(x)
    C = x.shape[dim]
    param = torch.rand(C, device=dev) + 0.1
    dx, dp = k.backward(g, x, param, dim)
    # every element in its own plane / every plane as rows / launches of a few samples
    period = C * _layout.channel_geometry(x, dim, True)[1]
    for kwargs in ({"planes_min_inner": 1}, {"planes_min_inner": 1 << 30}, {"max_chunk": max(1024, period) * 2}):
        dx2, dp2 = k.backward(g, x, param, dim, **kwargs)
        torch.testing.assert_close(dx2, dx, rtol=0, atol=0)
        torch.testing.assert_close(dp2, dp, rtol=1e-6, atol=1e-5)
    only_dx, none = k.backward(g, x, param, dim, **{"need_dw" if family == "prelu" else "need_dbeta": False})
    assert none is None and torch.equal(only_dx, dx)
    none, only_dp = k.backward(g, x, param, dim, need_dx=False)
    assert none is None and torch.allclose(only_dp, dp, rtol=1e-6, atol=1e-5)


def test_prelu_mask_backward_matches(dev: str) -> None:
    pk = _load("prelu")
    x = torch.randn(4, 6, 5, 5, device=dev).to(memory_format=torch.channels_last)
    w = torch.rand(6, device=dev)
    y, mask = pk.forward(x, w, 1, save_mask=True)
    g = torch.randn_like(x)
    dx, _ = pk.backward(g, x, w, 1, need_dw=False)
    dx_mask, _ = pk.backward(g, mask, w, 1, from_mask=True, need_dw=False)
    assert torch.equal(dx_mask, dx)
    with pytest.raises(ValueError, match="needs the input x"):
        pk.backward(g, mask, w, 1, from_mask=True)


# ----------------------------------------------------------------------------------------------------
# RReLU's generator
# ----------------------------------------------------------------------------------------------------


@pytest.mark.triton
def test_philox_reference_matches_random123() -> None:
    from rectlab.kernels.rrelu import philox_reference

    # Random123 known-answer vectors for Philox-4x32-10
    assert philox_reference(0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)


def test_rrelu_slopes_come_from_philox(dev: str) -> None:
    rk = _load("rrelu")
    seed_value = 0x1234_5678_9ABC
    seed = torch.tensor([seed_value], dtype=torch.int64, device=dev)
    x = -torch.rand(4099, device=dev) - 0.5  # all negative
    y, _ = rk.forward(x, seed, 0.1, 0.3)
    slopes = (y / x).cpu()
    for e in (0, 1, 2, 3, 4, 1027, 4098):
        r = rk.philox_reference(seed_value, e // 4)[e % 4]
        expected = 0.1 + (0.3 - 0.1) * ((r >> 8) * 2.0**-24)
        assert slopes[e].item() == pytest.approx(expected, rel=1e-6)
    for block, max_chunk in ((64, 1 << 30), (1024, 2048)):
        assert torch.equal(rk.forward(x, seed, 0.1, 0.3, block=block, max_chunk=max_chunk)[0], y)
        dx = rk.backward(torch.ones_like(x), x, seed, 0.1, 0.3, block=block, max_chunk=max_chunk)
        torch.testing.assert_close(dx, y / x, rtol=1e-6, atol=0)  # the backward regenerates the slopes


@pytest.mark.triton
def test_philox_matches_tl_randint4x(cuda: bool) -> None:
    """Our Philox is bit-identical to Triton's tl.randint4x (run where tl.randint4x can run: a GPU, or a
    fresh process with TRITON_INTERPRET=1 set before triton is imported)."""
    code = textwrap.dedent(
        """
        import torch, triton, triton.language as tl
        from rectlab.kernels import load
        rr = load("rrelu")

        @triton.jit
        def k(seed_ptr, out_ptr, N: tl.constexpr):
            seed = tl.load(seed_ptr)
            offs = tl.arange(0, N)
            a0, a1, a2, a3 = tl.randint4x(seed, offs)
            b0, b1, b2, b3 = rr._philox(seed, offs.to(tl.int64))
            same = (a0 == b0) & (a1 == b1) & (a2 == b2) & (a3 == b3)
            tl.store(out_ptr + offs, same.to(tl.int32))

        dev = "cuda" if torch.cuda.is_available() else "cpu"
        out = torch.zeros(256, dtype=torch.int32, device=dev)
        k[(1,)](torch.tensor([0x1234_5678_9ABC], device=dev), out, N=256)
        print(int(out.sum()))
        """
    )
    env = dict(os.environ)
    if not cuda:
        env["TRITON_INTERPRET"] = "1"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "256"


# ----------------------------------------------------------------------------------------------------
# Loading for the interpreter
# ----------------------------------------------------------------------------------------------------


@pytest.mark.triton
def test_load_follows_triton_interpret(monkeypatch: pytest.MonkeyPatch) -> None:
    from rectlab import kernels

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    interpreted = kernels.load("prelu")
    assert interpreted.INTERPRET
    monkeypatch.delenv("TRITON_INTERPRET")
    compiled = kernels.load("prelu")  # re-executed, not compiled until launched
    assert not compiled.INTERPRET and compiled is interpreted  # one module object, reloaded
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert kernels.load("prelu").INTERPRET
    with pytest.raises(ValueError, match="known: elementwise"):
        kernels.load("tanh")
