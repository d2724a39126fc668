"""Kernel hosts of rectlab.kernels: tilings, launch chunks, packed masks, the RNG, interpreter loading.

The op-level correctness against the reference lives in ``test_fused.py``; here each kernel host is
driven through its knobs (block size, launch chunk, tiling) and must give the same result every way.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from rectlab.activations import ops
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


def test_chunks_are_aligned_and_cover_everything() -> None:
    from rectlab.kernels._launch import chunks

    assert list(chunks(5000, 3, max_chunk=10**9)) == [(0, 5000)]
    pieces = list(chunks(100_000, 3 * 35, max_chunk=30_000))
    assert sum(n for _, n in pieces) == 100_000
    step = np.lcm(3 * 35, 8)
    assert all(s % step == 0 and n <= 30_000 for s, n in pieces)
    assert [s for s, _ in pieces] == sorted({s for s, _ in pieces})
    with pytest.raises(NotImplementedError, match="backend='torch'"):
        list(chunks(10**6, 5001, max_chunk=4096))


@pytest.mark.parametrize(
    "shape, channels_last, per_channel",
    [
        ((128, 64, 112, 112), False, True),  # the GPU benchmark's shape, NCHW: planes
        ((128, 64, 112, 112), True, True),  # channels_last: rows
        ((1, 64, 112, 112), False, True),  # batch 1
        ((512, 64, 8, 8), False, True),  # CIFAR's last stage
        ((16, 1024, 768), False, True),  # (N, L, C) with dim=-1 -> inner 1
        ((128, 64, 112, 112), False, False),  # shared
    ],
)
def test_reduce_plan_keeps_the_partial_buffer_small(shape, channels_last, per_channel) -> None:
    from rectlab.kernels._launch import reduce_plan

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
    _load("elementwise")  # builds _jit for this mode
    from rectlab.kernels import _jit
    from rectlab.kernels._launch import magic_divisor

    global _fastdiv  # kernels see module globals, not closures
    _fastdiv = _jit._fastdiv

    def divide(n_ptr, out_ptr, magic, shift, N: tl.constexpr):
        offs = tl.arange(0, N)
        tl.store(out_ptr + offs, _fastdiv(tl.load(n_ptr + offs), magic, shift))

    kernel = triton.jit(divide)
    n = torch.randint(0, 2**31 - 1, (4096,), dtype=torch.int32)
    n[:6] = torch.tensor([0, 1, 2**31 - 1, 2**30, 2**30 - 1, 12544 * 64 - 1])
    n = n.to(dev)
    for d in (1, 2, 3, 7, 35, 49, 64, 96, 3136, 12544, 802816, 2**20 + 1, 2**31 - 1):
        out = torch.empty_like(n)
        kernel[(1,)](n, out, *magic_divisor(d), N=4096)
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
    import inspect
    import re

    from triton.compiler import ASTSource

    if "constexprs" not in inspect.signature(ASTSource).parameters:
        pytest.skip(f"the compile helper needs the ASTSource API of Triton >= 3.3, not {triton.__version__}")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    ek, ck, rk = (_load(f) for f in ("elementwise", "channel", "rrelu"))
    t = f"*{dtype}"
    scalars = {"p0": "fp32", "p1": "fp32"}
    flags = ("OP", "SAVE_MASK", "BLOCK")
    for op in ek.PROGRAMS:
        save = op in ek.MASK_PROGRAMS
        sig = {"x_ptr": t, "y_ptr": t, "mask_ptr": "*u8", "n": "i32", **scalars, **dict.fromkeys(flags, "constexpr")}
        ptx = _compile_sm90(ek._elementwise_fwd_kernel, sig, {"OP": op, "SAVE_MASK": save, "BLOCK": 2048},
                            ("x_ptr", "y_ptr", "n"), 8)  # fmt: skip
        assert re.search(r"ld\.global(\.\w+)*\.v4", ptx), op
        sig = {"g_ptr": t, "saved_ptr": "*u8" if save else t, "dx_ptr": t, "n": "i32", **scalars,
               **dict.fromkeys(("OP", "FROM_MASK", "BLOCK"), "constexpr")}  # fmt: skip
        _compile_sm90(ek._elementwise_bwd_kernel, sig, {"OP": op, "FROM_MASK": save, "BLOCK": 2048}, ("g_ptr", "n"), 8)
    magic = dict.fromkeys(("C", "inner_magic", "inner_shift", "c_magic", "c_shift"), "i32")
    for op in ck.PROGRAMS:
        sig = {"x_ptr": t, "y_ptr": t, "mask_ptr": "*u8", "n": "i32", "p_ptr": "*fp32", **magic}
        const = {"OP": op, "SAVE_MASK": op == "prelu", "BLOCK": 2048}
        sig |= dict.fromkeys(const, "constexpr")
        ptx = _compile_sm90(ck._channel_fwd_kernel, sig, const, ("x_ptr", "y_ptr", "n"), 8)
        assert not re.search(r"(div|rem)\.[su](32|64)", ptx), "integer division per element in a flat forward"
        for kernel, scalars_ in (
            (ck._channel_bwd_planes_kernel, {"C": "i32"}),
            (ck._channel_bwd_rows_kernel, {"inner": "i32", "rows_per_program": "i32"}),
        ):
            planes = "C" in scalars_
            sig = {
                "g_ptr": t,
                "saved_ptr": t,
                "p_ptr": "*fp32",
                "dx_ptr": t,
                "partial_ptr": "*fp32",
                "rows": "i32",
                "width": "i32",
                **scalars_,
            }
            const = {"HAS_DX": True, "HAS_DP": True, "OP": op, "FROM_MASK": False}
            const |= {"TILE_R": 2, "TILE_W": 1024} if planes else {"TILE_R": 32, "TILE_W": 64}
            sig |= dict.fromkeys(const, "constexpr")
            _compile_sm90(kernel, sig, const, ("g_ptr", "saved_ptr", "dx_ptr", "width"), 8 if planes else 4)
    rr = {"n": "i32", "seed_ptr": "*i64", "counter0": "i32", "lower": "fp32", "upper": "fp32"}
    sig = {"x_ptr": t, "y_ptr": t, "mask_ptr": "*u8", **rr, "SAVE_MASK": "constexpr", "BLOCK": "constexpr"}
    _compile_sm90(rk._rrelu_fwd_kernel, sig, {"SAVE_MASK": True, "BLOCK": 2048}, ("x_ptr", "y_ptr", "n"), 8)
    sig = {"g_ptr": t, "saved_ptr": "*u8", "dx_ptr": t, **rr, "FROM_MASK": "constexpr", "BLOCK": "constexpr"}
    _compile_sm90(rk._rrelu_bwd_kernel, sig, {"FROM_MASK": True, "BLOCK": 2048}, ("g_ptr", "dx_ptr", "n"), 8)


# ----------------------------------------------------------------------------------------------------
# Kernels under every knob
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", sorted({p for op in ops.TABLE for p in op.programs("elementwise")}))
def test_elementwise_blocks_and_chunks_agree(dev: str, op: str) -> None:
    ek = _load("elementwise")
    x = torch.randn(5003, device=dev)
    g = torch.randn(5003, device=dev)
    save = op in ek.MASK_PROGRAMS
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


@pytest.mark.parametrize("op", [p for op in ops.TABLE for p in op.programs("channel")])
@pytest.mark.parametrize(
    "shape, channels_last, dim",
    [((3, 4, 9, 10), False, 1), ((3, 4, 9, 10), True, 1), ((50, 7, 3), False, -1), ((6, 5, 40), False, 1)],
)
def test_channel_backward_tilings_agree(dev: str, op: str, shape, channels_last: bool, dim: int) -> None:
    k = _load("channel")
    x = torch.randn(shape, device=dev)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    g = torch.randn_like(x)
    C = x.shape[dim]
    param = torch.rand(C, device=dev) + 0.1
    dx, dp = k.backward(g, x, param, op, dim)
    # every element in its own plane / every plane as rows / launches of a few samples
    period = C * _layout.channel_geometry(x, dim, True)[1]
    for kwargs in ({"planes_min_inner": 1}, {"planes_min_inner": 1 << 30}, {"max_chunk": max(1024, period) * 2}):
        dx2, dp2 = k.backward(g, x, param, op, dim, **kwargs)
        torch.testing.assert_close(dx2, dx, rtol=0, atol=0)
        torch.testing.assert_close(dp2, dp, rtol=1e-6, atol=1e-5)
    only_dx, none = k.backward(g, x, param, op, dim, need_dp=False)
    assert none is None and torch.equal(only_dx, dx)
    none, only_dp = k.backward(g, x, param, op, dim, need_dx=False)
    assert none is None and torch.allclose(only_dp, dp, rtol=1e-6, atol=1e-5)


def test_prelu_mask_backward_matches(dev: str) -> None:
    ck = _load("channel")
    x = torch.randn(4, 6, 5, 5, device=dev).to(memory_format=torch.channels_last)
    w = torch.rand(6, device=dev)
    y, mask = ck.forward(x, w, "prelu", 1, save_mask=True)
    g = torch.randn_like(x)
    dx, _ = ck.backward(g, x, w, "prelu", 1, need_dp=False)
    dx_mask, _ = ck.backward(g, mask, w, "prelu", 1, from_mask=True, need_dp=False)
    assert torch.equal(dx_mask, dx)
    with pytest.raises(ValueError, match="needs the input x"):
        ck.backward(g, mask, w, "prelu", 1, from_mask=True)
    with pytest.raises(ValueError, match="PReLU only"):
        ck.forward(x, w, "swish", 1, save_mask=True)
    with pytest.raises(ValueError, match="known: prelu, swish"):
        ck.forward(x, w, "elu", 1)


@pytest.mark.triton
def test_op_table_and_kernel_families_agree() -> None:
    """Every program of every family is launched by an op of the op table and vice versa, and the programs that
    keep a 1-bit mask are those of the ops with the memory saver."""
    from rectlab import kernels

    for family in kernels.FAMILIES:
        module = _load(family)
        launched = {p for op in ops.TABLE for p in op.programs(family)}
        assert launched == set(module.PROGRAMS), family
    masked = {p for op in ops.TABLE if op.save_mask for p in op.programs("elementwise")}
    assert masked == set(_load("elementwise").MASK_PROGRAMS)
    assert {op.name for op in ops.TABLE if op.programs("channel") and op.save_mask} == {"prelu"}  # channel masks


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
    interpreted = kernels.load("channel")
    assert interpreted.BUILD.interpret
    monkeypatch.delenv("TRITON_INTERPRET")
    compiled = kernels.load("channel")  # re-executed, not compiled until launched
    assert not compiled.BUILD.interpret and compiled is interpreted  # one module object, reloaded
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert kernels.load("channel").BUILD.interpret
    with pytest.raises(ValueError, match="known: elementwise"):
        kernels.load("tanh")


@pytest.mark.triton
def test_every_family_keeps_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract of rectlab.kernels: every family file is listed, defines BUILD, its kernels agree with BUILD,
    and after load() they call the helpers of the current _jit execution, in both modes."""
    from pathlib import Path

    from rectlab import kernels

    files = {p.stem for p in Path(kernels.__file__).parent.glob("*.py") if not p.stem.startswith("_")}
    assert files == set(kernels.FAMILIES)
    for interpret in ("1", "0", "1"):
        monkeypatch.setenv("TRITON_INTERPRET", interpret)
        for family in kernels.FAMILIES:
            build = kernels.check_family(kernels.load(family))
            assert build.interpret == (interpret == "1")
            assert build.helpers is sys.modules["rectlab.kernels._jit"].EXECUTION


@pytest.mark.triton
def test_a_family_that_breaks_the_contract_is_refused(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rectlab import kernels

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    kernels.load("channel")
    jit = sys.modules["rectlab.kernels._jit"]
    path = tmp_path / "fake.py"
    path.write_text("import triton\n\n\n@triton.jit\ndef _k(x_ptr):\n    pass\n")
    spec = importlib.util.spec_from_file_location("rectlab.kernels.fake", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(TypeError, match=r"does not define BUILD = build_of"):
        kernels.check_family(module)
    module.BUILD = kernels.Build(interpret=True, helpers=jit.EXECUTION)  # says interpreted, built compiled
    with pytest.raises(TypeError, match="_k was built for the Triton compiler"):
        kernels.check_family(module)
    module.BUILD = jit.build_of(module._k)
    assert kernels.check_family(module) == kernels.Build(False, jit.EXECUTION)
