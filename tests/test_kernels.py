"""Triton kernels against their torch references: on CPU under TRITON_INTERPRET=1 in fp32 (marked
`interpreter`; the interpreter's bf16 is wrong, so bf16 is upcast), and on CUDA in bf16 (marked
`gpu`). Every kernel check runs in both modes through the `mode` fixture.

Error budget (STYLE.md, after flash-attention's tests): the kernel's max error against a
higher-precision reference is at most twice that of the same-dtype torch implementation, plus one
fp32 ulp of the output (the two can round the last bit differently when both are fp32-exact).
The higher-precision reference is fp64 for fp32 inputs and fp32 for bf16 inputs.
"""

from __future__ import annotations

import importlib
import math
import os

import pytest

torch = pytest.importorskip("torch", reason="torch is needed for the kernel tests (pip install -e '.[test]')")
CUDA = torch.cuda.is_available()
if not CUDA:
    # Before triton builds any kernel: @triton.jit picks the interpreter when the module is imported.
    os.environ["TRITON_INTERPRET"] = "1"
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
pytest.importorskip("triton", reason="triton is needed for the kernel tests (pip install -e '.[test]')")

MODULES = ["decode_attention", "quant_decode_attention", "sparse_decode_attention", "block_sparse_prefill"]
MODULES += ["bandwidth_probe"]


def _load_kernels():
    """Import the kernel modules; rebuild them if an earlier import in this process chose the other
    mode (interpreted vs compiled) than this module needs."""
    common = importlib.import_module("roofline.kernels.decode_common")
    mods = {name: importlib.import_module(f"roofline.kernels.{name}") for name in MODULES}
    da = mods["decode_attention"]
    if common.is_interpreted(da.decode_attention_kernel) != INTERPRET:
        importlib.reload(common)  # the shared device functions first: the kernels are built from them
        mods = {name: importlib.reload(mod) for name, mod in mods.items()}  # dependency order
    return mods


_K = _load_kernels()
da, qda, sda, bsp, bw = (_K[name] for name in MODULES)

MODES = [
    pytest.param(
        ("cpu", torch.float32),
        marks=[
            pytest.mark.interpreter,
            pytest.mark.skipif(not INTERPRET, reason="CUDA present: run with TRITON_INTERPRET=1 for these"),
        ],
        id="interpreter-fp32",
    ),
    pytest.param(
        ("cuda", torch.bfloat16),
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not CUDA or INTERPRET, reason="needs CUDA (not interpreted)"),
        ],
        id="gpu-bf16",
    ),
]

DEVICE = "cpu" if INTERPRET else "cuda"  # where the input-check tests build their tensors
BATCH, HEADS, KV_HEADS, PAGE = 3, 6, 2, 16
KV_LENS = [37, 100, 129]
SPLITS = 3


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


def precise(dtype):
    """The higher-precision dtype the error budget is measured against."""
    return torch.float64 if dtype == torch.float32 else torch.float32


def assert_within_budget(out, same_dtype, reference):
    """max|out - reference| <= 2 max|same_dtype - reference| + one fp32 ulp of the reference."""
    ref = reference.double()
    err = (out.double() - ref).abs().max().item()
    base = (same_dtype.double() - ref).abs().max().item()
    ulp = torch.finfo(torch.float32).eps * ref.abs().max().item()
    assert err <= 2 * base + ulp, f"kernel error {err:.3g} > 2 x torch error {base:.3g} (+{ulp:.2g})"


def to_pool(x, block_table, num_pages):
    """Contiguous [batch, kv_heads, pages * PAGE, d] -> pool [num_pages, kv_heads, PAGE, d] holding
    page i of sequence b at block_table[b, i]; unused pool pages are noise."""
    batch, kv_heads, length, d = x.shape
    chunks = (
        x.view(batch, kv_heads, length // PAGE, PAGE, d).permute(0, 2, 1, 3, 4).reshape(-1, kv_heads, PAGE, d)
    )
    pool = torch.randn(num_pages, kv_heads, PAGE, d, device=x.device).to(x.dtype)
    pool[block_table.reshape(-1).long()] = chunks
    return pool


def decode_case(mode, head_dim, layout, heads=HEADS, kv_heads=KV_HEADS, lens=KV_LENS, seed=0):
    """Inputs for the decode kernels: q, contiguous k/v (for references), the kernel's k/v and kwargs."""
    device, dtype = mode
    gen = torch.Generator().manual_seed(seed)
    max_pages = math.ceil(max(lens) / PAGE)
    q = torch.randn(len(lens), heads, head_dim, generator=gen)
    k = torch.randn(len(lens), kv_heads, max_pages * PAGE, head_dim, generator=gen)
    v = torch.randn(k.shape, generator=gen)
    q, k, v = (t.to(device, dtype) for t in (q, k, v))
    kv_lens = torch.tensor(lens, device=device, dtype=torch.int32)
    if layout == "contiguous":
        return q, k, v, kv_lens, (k, v, {})
    num_pages = len(lens) * max_pages + 5
    block_table = torch.randperm(num_pages, generator=gen)[: len(lens) * max_pages].view(len(lens), max_pages)
    block_table = block_table.to(device, torch.int32)
    paged = (to_pool(k, block_table, num_pages), to_pool(v, block_table, num_pages))
    return q, k, v, kv_lens, (*paged, dict(block_table=block_table, page_size=PAGE))


def decode_refs(q, k, v, kv_lens, **kw):
    """(same-dtype torch output, higher-precision torch output) of dense decode attention."""
    hi = precise(q.dtype)
    return (
        da.decode_attention_reference(q, k, v, kv_lens, **kw),
        da.decode_attention_reference(q.to(hi), k.to(hi), v.to(hi), kv_lens, **kw),
    )


# --- bandwidth probe -------------------------------------------------------------------------------


def test_copy_and_triad(mode):
    device, dtype = mode
    gen = torch.Generator().manual_seed(1)
    b, c = (torch.randn(5003, generator=gen).to(device, dtype) for _ in range(2))
    assert torch.equal(bw.copy(b), bw.copy_reference(b))
    ints = torch.randint(-128, 127, (3, 1001), generator=gen, dtype=torch.int8).to(device)
    assert torch.equal(bw.copy(ints), ints)
    exact = b.to(precise(dtype)) + 0.75 * c.to(precise(dtype))
    assert_within_budget(bw.triad(b, c, 0.75), b + 0.75 * c, exact)
    assert bw.copy(b[:0]).numel() == 0


def test_bandwidth_probe_rejects_bad_inputs():
    x = torch.zeros(4, 6, device=DEVICE)
    with pytest.raises(ValueError, match="contiguous"):
        bw.copy(x.t())
    with pytest.raises(ValueError, match="share shape and dtype"):
        bw.triad(x, x[:3], 1.0)
    with pytest.raises(ValueError, match="floating"):
        bw.triad(x.int(), x.int(), 1.0)


# --- decode attention ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["contiguous", "paged"])
@pytest.mark.parametrize("head_dim", [32, 64])
def test_decode_attention(mode, layout, head_dim):
    q, k, v, kv_lens, (kk, vv, kw) = decode_case(mode, head_dim, layout)
    out = da.decode_attention(q, kk, vv, kv_lens, num_splits=SPLITS, **kw)
    assert out.shape == q.shape and out.dtype == q.dtype
    assert_within_budget(out, *decode_refs(q, k, v, kv_lens))


def test_decode_attention_mha_default_splits_and_empty_sequence(mode):
    """MHA (group 1), an empty sequence (zero output), more splits than tokens, default splits."""
    q, k, v, kv_lens, _ = decode_case(mode, 32, "contiguous", heads=4, kv_heads=4, lens=[0, 2, 70], seed=3)
    same, exact = decode_refs(q, k, v, kv_lens)
    for splits in (None, 7):
        out = da.decode_attention(q, k, v, kv_lens, num_splits=splits)
        assert torch.all(out[0] == 0)
        assert_within_budget(out, same, exact)


def test_decode_attention_rejects_bad_inputs():
    q, k, v, kv_lens, (pk, pv, kw) = decode_case((DEVICE, torch.float32), 32, "paged")
    cases = [
        (dict(q=q[:, :5]), "multiple of kv heads"),
        (dict(kv_lens=kv_lens.float()), "kv_lens must be a 1-D int32/int64"),
        (dict(kv_lens=kv_lens + 100), r"kv_lens must lie in \[0, 144\]"),
        (dict(k=k.double(), v=v.double()), "must match each other and q's dtype"),
        (dict(k=k[..., :16], v=v[..., :16]), "head_dim 16 differs"),
        (dict(page_size=PAGE), "only used with a block_table"),
    ]
    for change, message in cases:
        args = dict(q=q, k=k, v=v, kv_lens=kv_lens) | change
        with pytest.raises(ValueError, match=message):
            da.decode_attention(args.pop("q"), args.pop("k"), args.pop("v"), args.pop("kv_lens"), **args)
    with pytest.raises(ValueError, match="page_size=8"):
        da.decode_attention(q, pk, pv, kv_lens, block_table=kw["block_table"], page_size=8)
    with pytest.raises(ValueError, match="needs a positive page_size"):
        da.decode_attention(q, pk, pv, kv_lens, block_table=kw["block_table"])
    with pytest.raises(ValueError, match="block_table entries"):
        da.decode_attention(q, pk, pv, kv_lens, block_table=kw["block_table"] + 1000, page_size=PAGE)


# --- quantised KV ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 4])
def test_quantize_kv_error_within_half_a_step(bits):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(3, 2, 37, 64, generator=gen) * torch.linspace(0.1, 10, 64)  # groups of varied range
    x[0, 0, 0, :16] = 1.5  # a constant group: scale 0, exact
    packed, scale, zero = qda.quantize_kv(x, bits, 16)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 2, 37, 64 if bits == 8 else 32)
    assert scale.shape == zero.shape == (3, 2, 37, 4)
    deq = qda.dequantize_kv((packed, scale, zero), bits)
    step = scale.repeat_interleave(16, -1)
    # Rounding to the nearest of 2^bits - 1 steps: at most half a step off, up to fp32 rounding.
    assert torch.all((deq - x).abs() <= 0.5 * step + 1e-6 * x.abs().clamp(min=1))
    assert torch.all(deq[0, 0, 0, :16] == 1.5)
    levels = 2**bits - 1
    assert torch.allclose(scale, (x.unflatten(-1, (4, 16)).amax(-1) - zero) / levels)
    # The uniform-noise model: rms error ~ step / sqrt(12) on groups with many levels.
    rms = ((deq - x) / step.clamp(min=1e-12))[step > 0].pow(2).mean().sqrt()
    assert 0.25 < rms < 0.33


@pytest.mark.parametrize("layout", ["contiguous", "paged"])
@pytest.mark.parametrize("bits", [8, 4])
def test_quant_decode_attention(mode, bits, layout):
    device, dtype = mode
    q, k, v, kv_lens, (kk, vv, kw) = decode_case(mode, 32, layout, seed=5)
    kq, vq = qda.quantize_kv(kk, bits, 8), qda.quantize_kv(vv, bits, 8)
    out = qda.quant_decode_attention(q, kq, vq, kv_lens, bits=bits, num_splits=SPLITS, **kw)
    same = qda.quant_decode_attention_reference(q, kq, vq, kv_lens, bits=bits, **kw)
    hi = precise(dtype)
    exact = da.decode_attention_reference(
        q.to(hi), qda.dequantize_kv(kq, bits, hi), qda.dequantize_kv(vq, bits, hi), kv_lens, **kw
    )
    assert_within_budget(out, same, exact)
    if dtype == torch.float32:  # the same dequantised values in, so equal up to float rounding
        torch.testing.assert_close(out, same, rtol=1e-5, atol=1e-5)


def test_quant_decode_attention_rejects_bad_inputs():
    q, k, v, kv_lens, _ = decode_case((DEVICE, torch.float32), 32, "contiguous")
    kq, vq = qda.quantize_kv(k, 4, 8), qda.quantize_kv(v, 4, 8)
    with pytest.raises(ValueError, match="uint8 \\[..., 32\\] for 8-bit"):
        qda.quant_decode_attention(q, kq, vq, kv_lens, bits=8)
    with pytest.raises(ValueError, match="quantised alike"):
        qda.quant_decode_attention(q, kq, qda.quantize_kv(v, 4, 16), kv_lens, bits=4)
    with pytest.raises(ValueError, match="tuple from quantize_kv"):
        qda.quant_decode_attention(q, kq.packed, vq, kv_lens, bits=4)
    with pytest.raises(ValueError, match="group_size must divide"):
        qda.quantize_kv(k, 8, 5)


# --- page-sparse (Quest) ---------------------------------------------------------------------------


def quest_topk_by_hand(q, k, kv_lens, budget):
    """The literal Quest rule in fp64, loop by loop: {(b, kv_head): sorted selected pages}."""
    heads, kv_heads = q.shape[1], k.shape[1]
    group = heads // kv_heads
    chosen = {}
    for b, length in enumerate(kv_lens.tolist()):
        for h in range(kv_heads):
            scores = []
            for p in range(math.ceil(length / PAGE)):
                keys = k[b, h, p * PAGE : min((p + 1) * PAGE, length)].double()
                lo, hi = keys.min(0).values, keys.max(0).values
                qs = q[b, h * group : (h + 1) * group].double()
                scores.append(float(torch.maximum(qs * lo, qs * hi).sum()))
            best = sorted(range(len(scores)), key=lambda p: -scores[p])[: math.ceil(budget / PAGE)]
            chosen[b, h] = sorted(best)
    return chosen


@pytest.mark.parametrize("layout", ["contiguous", "paged"])
@pytest.mark.parametrize("budget", [1, 48, 100])
def test_page_selection_is_the_reference_topk(layout, budget):
    q, k, v, kv_lens, (kk, _, kw) = decode_case(("cpu", torch.float32), 32, layout, seed=6)
    kmin, kmax = sda.page_metadata(kk, PAGE, kv_lens, block_table=kw.get("block_table"))
    assert kmin.shape == (BATCH, KV_HEADS, 9, 32)
    pages, counts = sda.select_pages(sda.page_scores(q, kmin, kmax, kv_lens, PAGE), budget, PAGE)
    expected = quest_topk_by_hand(q, k, kv_lens, budget)
    for (b, h), want in expected.items():
        assert counts[b, h] == len(want)
        assert pages[b, h, : counts[b, h]].tolist() == want


def test_sparse_decode_rejects_bad_inputs():
    q, k, v, kv_lens, _ = decode_case((DEVICE, torch.float32), 32, "contiguous")
    with pytest.raises(ValueError, match="page_size must be at least 1"):
        sda.sparse_decode_attention(q, k, v, kv_lens, 0, 48)
    with pytest.raises(ValueError, match="token_budget must be at least 1"):
        sda.sparse_decode_attention(q, k, v, kv_lens, PAGE, 0)
    with pytest.raises(ValueError, match="multiple of kv heads"):
        sda.sparse_decode_attention(q[:, :5], k, v, kv_lens, PAGE, 48)


@pytest.mark.parametrize("layout", ["contiguous", "paged"])
def test_sparse_decode_with_full_budget_is_dense(mode, layout):
    q, k, v, kv_lens, (kk, vv, kw) = decode_case(mode, 32, layout, seed=7)
    out = sda.sparse_decode_attention(
        q, kk, vv, kv_lens, PAGE, max(KV_LENS), block_table=kw.get("block_table"), num_splits=SPLITS
    )
    assert_within_budget(out, *decode_refs(q, k, v, kv_lens))


@pytest.mark.parametrize("layout", ["contiguous", "paged"])
def test_sparse_decode_reads_only_selected_pages(mode, layout):
    device, dtype = mode
    q, k, v, kv_lens, (kk, vv, kw) = decode_case(mode, 32, layout, seed=8)
    bt = kw.get("block_table")
    out = sda.sparse_decode_attention(q, kk, vv, kv_lens, PAGE, 48, block_table=bt, num_splits=SPLITS)
    same = sda.sparse_decode_attention_reference(q, kk, vv, kv_lens, PAGE, 48, block_table=bt)
    hi = precise(dtype)
    # The selection is made once (in fp32 scores); the precise reference attends over the same pages.
    kmin, kmax = sda.page_metadata(kk, PAGE, kv_lens, block_table=bt)
    pages, counts = sda.select_pages(sda.page_scores(q, kmin, kmax, kv_lens, PAGE), 48, PAGE)
    keep = sda.selected_token_mask(pages, counts, PAGE, k.shape[2])
    exact = da.decode_attention_reference(q.to(hi), k.to(hi), v.to(hi), kv_lens, keep=keep)
    assert_within_budget(out, same, exact)
    dense = da.decode_attention_reference(q.to(hi), k.to(hi), v.to(hi), kv_lens)
    assert (out.to(hi) - dense).abs().max() > 0.05  # 3 of up to 9 pages: visibly not dense


# --- block-sparse prefill --------------------------------------------------------------------------

SEQ, BLOCK = 100, 16  # 7 blocks, the last one short


def prefill_case(mode, head_dim, seed):
    device, dtype = mode
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 4, SEQ, head_dim, generator=gen)
    k, v = (torch.randn(2, 2, SEQ, head_dim, generator=gen) for _ in range(2))
    mask = torch.rand(2, 4, 7, 7, generator=gen) < 0.5
    mask[0, 1, 3, :] = False  # query block 3 of (0, 1) sees nothing: zero output
    mask[1, 2, 6, 6] = False  # last block without its diagonal tile: its first rows see nothing
    return (*(t.to(device, dtype) for t in (q, k, v)), mask.to(device))


@pytest.mark.parametrize("head_dim", [32, 64])
def test_block_sparse_prefill(mode, head_dim):
    q, k, v, mask = prefill_case(mode, head_dim, seed=9)
    out = bsp.block_sparse_prefill(q, k, v, mask, BLOCK)
    assert out.shape == q.shape and out.dtype == q.dtype
    assert torch.equal(bsp.block_sparse_prefill(q, k, v, mask, BLOCK, blocks=bsp.active_blocks(mask)), out)
    hi = precise(q.dtype)
    same = bsp.block_sparse_prefill_reference(q, k, v, mask, BLOCK)
    exact = bsp.block_sparse_prefill_reference(q.to(hi), k.to(hi), v.to(hi), mask, BLOCK)
    assert_within_budget(out, same, exact)
    assert torch.all(out[0, 1, 3 * BLOCK : 4 * BLOCK] == 0)


def test_block_sparse_prefill_with_full_mask_is_causal_attention(mode):
    q, k, v, _ = prefill_case(mode, 32, seed=10)
    full = torch.ones(2, 4, 7, 7, dtype=torch.bool, device=q.device)
    out = bsp.block_sparse_prefill(q, k, v, full, BLOCK)
    hi = precise(q.dtype)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    same = sdpa(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), is_causal=True)
    exact = sdpa(q.to(hi), k.to(hi).repeat_interleave(2, 1), v.to(hi).repeat_interleave(2, 1), is_causal=True)
    assert_within_budget(out, same, exact)


def test_block_index_compression_and_pair_count():
    mask = torch.rand(2, 3, 7, 7, generator=torch.Generator().manual_seed(11)) < 0.6
    idx, cnt = bsp.active_blocks(mask)
    for b, h, m in torch.cartesian_prod(torch.arange(2), torch.arange(3), torch.arange(7)).tolist():
        want = [n for n in range(m + 1) if mask[b, h, m, n]]
        assert idx[b, h, m, : cnt[b, h, m]].tolist() == want
    # Closed form vs the expanded token mask (the diagonal tiles and the short last block included).
    assert bsp.causal_pairs(mask, BLOCK, SEQ) == int(bsp.token_mask(mask, BLOCK, SEQ).sum())
    assert bsp.causal_pairs(torch.ones(1, 1, 7, 7, dtype=torch.bool), BLOCK, SEQ) == SEQ * (SEQ + 1) // 2
    rand = bsp.random_block_mask(2, 3, SEQ, BLOCK, 0.0)
    assert rand.shape == (2, 3, 7, 7) and torch.equal(rand, torch.eye(7, dtype=torch.bool).expand(2, 3, 7, 7))


def test_block_sparse_prefill_rejects_bad_inputs():
    q, k, v, mask = prefill_case((DEVICE, torch.float32), 32, seed=12)
    with pytest.raises(ValueError, match="power of two >= 16"):
        bsp.block_sparse_prefill(q, k, v, mask, 24)
    with pytest.raises(ValueError, match=r"bool \[batch=2, heads=4, 4, 4\]"):
        bsp.block_sparse_prefill(q, k, v, mask, 32)
    with pytest.raises(ValueError, match="multiple of kv heads"):
        bsp.block_sparse_prefill(
            q, k[:, :1].expand(2, 3, SEQ, 32), v[:, :1].expand(2, 3, SEQ, 32), mask, BLOCK
        )
    with pytest.raises(ValueError, match="share one of"):
        bsp.block_sparse_prefill(q, k.double(), v.double(), mask, BLOCK)
