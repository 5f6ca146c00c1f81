"""pyprof.bench.models: every seed architecture's parameter count and multiply-adds against the published figures (and
against torchvision's own model where it imports), and the LSTM FLOP formula against a hand count."""

import pytest
import torch

import pyprof
from pyprof.bench import workloads  # torchvision_models(): the one place that decides whether torchvision imports
from pyprof.bench.models import gpt2, mobile, seq2seq, vision


def _params(m):
    return sum(p.numel() for p in m.parameters())


def _on_meta(make, *args, **kwargs):
    """Build the model and a 1x3x224x224 input on the meta device: shapes only, so counting runs no arithmetic and
    VGG-11's 133 M parameters take no memory (the counter sees the same ops and shapes as on a real device)."""
    with torch.device("meta"):
        return make(*args, **kwargs).eval(), torch.empty(1, 3, 224, 224)


def _count(make, *args, **kwargs):
    m, x = _on_meta(make, *args, **kwargs)
    return _params(m), pyprof.count_flops(m, x)


# Published figures, batch 1 at 224x224. torchvision 0.29's weight metadata (torchvision/models/<file>.py, the
# IMAGENET1K_V1 entry of each *_Weights enum) gives "num_params" exactly and "_ops" in GFLOPS, which torchvision
# counts as multiply-adds, to 3 decimals: the tolerance is half a unit of the last published digit (0.0005 G = 0.5 M).
# MobileNet v1 from its paper, rounded to 2-3 significant digits: half a unit of the last digit again.
PUBLISHED = [
    # factory, params, params tolerance, multiply-adds, multiply-adds tolerance
    pytest.param(vision.alexnet, 61_100_840, 0, 0.714e9, 0.5e6, id="alexnet"),          # alexnet.py: 61100840, 0.714
    pytest.param(vision.vgg11, 132_863_336, 0, 7.609e9, 0.5e6, id="vgg11"),             # vgg.py: 132863336, 7.609
    pytest.param(vision.googlenet, 6_624_904, 0, 1.498e9, 0.5e6, id="googlenet"),       # googlenet.py: 6624904, 1.498
    pytest.param(vision.resnet18, 11_689_512, 0, 1.814e9, 0.5e6, id="resnet18"),        # resnet.py: 11689512, 1.814
    pytest.param(vision.resnet50, 25_557_032, 0, 4.089e9, 0.5e6, id="resnet50"),        # resnet.py: 25557032, 4.089
    pytest.param(vision.mobilenet_v2, 3_504_872, 0, 0.301e9, 0.5e6, id="mobilenet_v2"),  # mobilenetv2.py: 3504872, 0.301
    pytest.param(mobile.shufflenet_v2_x1_0, 2_278_604, 0, 0.145e9, 0.5e6,               # shufflenetv2.py: 2278604, 0.145
                 id="shufflenet_v2"),
    pytest.param(mobile.efficientnet_b0, 5_288_548, 0, 0.386e9, 0.5e6,                  # efficientnet.py: 5288548, 0.386
                 id="efficientnet_b0"),
    # Howard et al. 2017, "MobileNets", Table 8 (1.0 MobileNet-224): 4.2 million parameters, 569 million mult-adds.
    pytest.param(mobile.mobilenet_v1, 4.2e6, 0.05e6, 569e6, 0.5e6, id="mobilenet_v1"),
    # Zhang et al. 2017, "ShuffleNet", Table 2: ShuffleNet 1x, "140 MFLOPs" (2 significant digits, for every g);
    # parameters: 1.9 M, from the authors' implementation (megvii-model/ShuffleNet-Series, ShuffleNetV1/README.md,
    # "ShuffleNetV1 1.0x (group=3)"), the paper gives none. Table 1's finer figures are checked below.
    pytest.param(mobile.shufflenet_v1, 1.9e6, 0.05e6, 140e6, 5e6, id="shufflenet_v1"),
]


@pytest.mark.parametrize("make, params, params_tol, macs, macs_tol", PUBLISHED)
def test_published_parameter_count_and_multiply_adds(make, params, params_tol, macs, macs_tol):
    n, fc = _count(make)
    assert abs(n - params) <= params_tol
    # multiply-adds = FLOPs / 2: every counted op here is a convolution or a linear layer (2 FLOPs per multiply-add)
    assert set(fc.by_op) <= {"aten.convolution", "aten.addmm"}
    assert abs(fc.total_flops / 2 - macs) <= macs_tol


def test_mobilenet_v1_parameters_by_hand():
    # conv weights: 3*32*9 = 864 (stem) + depthwise 9 * (32+64+128+128+256+256+5*512+512+1024) = 9 * 4960 = 44,640
    #   + pointwise 32*64 + 64*128 + 128*128 + 128*256 + 256*256 + 256*512 + 5*512*512 + 512*1024 + 1024*1024
    #   = 2048 + 8192 + 16384 + 32768 + 65536 + 131072 + 1310720 + 524288 + 1048576 = 3,139,584; total 3,185,088
    # batch norm (weight + bias): 2 * (32 + 4960 depthwise + 5952 pointwise channels) = 21,888
    # classifier: 1024*1000 + 1000 = 1,025,000;  sum = 4,231,976 (the paper's "4.2 million")
    assert _params(mobile.mobilenet_v1()) == 4_231_976


@pytest.mark.parametrize("groups, table1_mflops", [(1, 143), (2, 140), (3, 137), (4, 133), (8, 137)])
def test_shufflenet_v1_matches_table_1_for_every_group_count(groups, table1_mflops):
    # Zhang et al. 2017, Table 1, "Complexity" row for ShuffleNet 1x with g = 1, 2, 3, 4, 8 (MFLOPs = million
    # multiply-adds). The row counts the convolutions only: with the classifier (channels x 1000 multiply-adds, e.g.
    # 960 x 1000 = 0.96 M for g = 3) the figures for g = 2, 4 and 8 would round one higher. Tolerance: half a unit.
    _, fc = _count(mobile.shufflenet_v1, groups)
    assert abs(fc.by_op["aten.convolution"].flops / 2 - table1_mflops * 1e6) <= 0.5e6


def test_shufflenet_v1_rejects_a_group_count_the_paper_does_not_define():
    with pytest.raises(ValueError, match="groups=5"):
        mobile.shufflenet_v1(5)


OWN_VS_TORCHVISION = [
    (vision.alexnet, "alexnet", {}), (vision.vgg11, "vgg11", {}),
    (vision.googlenet, "googlenet", {"aux_logits": False, "init_weights": True}),
    (vision.resnet18, "resnet18", {}), (vision.resnet50, "resnet50", {}), (vision.mobilenet_v2, "mobilenet_v2", {}),
    (mobile.shufflenet_v2_x1_0, "shufflenet_v2_x1_0", {}), (mobile.efficientnet_b0, "efficientnet_b0", {}),
]


@pytest.mark.parametrize("make, tv_name, tv_kwargs", OWN_VS_TORCHVISION, ids=[t[1] for t in OWN_VS_TORCHVISION])
def test_own_definition_equals_torchvision(make, tv_name, tv_kwargs):
    tvm, why = workloads.torchvision_models()
    if tvm is None:
        pytest.skip(f"{why}: the exact comparison runs where torchvision imports (as on the GPU machines)")
    own, x = _on_meta(make)
    theirs, _ = _on_meta(getattr(tvm, tv_name), **tv_kwargs)
    # same multiset of parameter shapes (layer structure), hence the same count; same multiply-adds, op by op
    assert sorted(tuple(p.shape) for p in own.parameters()) == sorted(tuple(p.shape) for p in theirs.parameters())
    assert _params(own) == _params(theirs)
    mine, ref = pyprof.count_flops(own, x), pyprof.count_flops(theirs, x)
    assert {k: v.flops for k, v in mine.by_op.items()} == {k: v.flops for k, v in ref.by_op.items()}


@pytest.mark.parametrize("make", [vision.alexnet, vision.vgg11, vision.googlenet, vision.resnet18, vision.resnet50,
                                  vision.mobilenet_v2, mobile.mobilenet_v1, mobile.shufflenet_v1,
                                  mobile.shufflenet_v2_x1_0, mobile.efficientnet_b0])
def test_vision_models_train_on_small_inputs(make):
    # one training step's forward and backward in train mode (dropout, batch-norm statistics, stochastic depth) at
    # 64x64, the smallest resolution every net here takes, on the meta device: it checks shapes and that every
    # parameter is reached by the backward pass without VGG-11's 133 M-parameter initialization (seconds on 2 cores);
    # the suite test runs a real step (tests/test_bench_suite.py)
    with torch.device("meta"):
        m = make(num_classes=7).train()
        y = m(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 7)
    y.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in m.parameters())


def test_gpt2_small_parameter_count():
    # wte 50257*768 + wpe 1024*768 + 12 x 7,087,872 per block + final LN 1536 = 124,439,808 (tied output)
    m = gpt2.GPTLM()
    assert _params(m) == 124_439_808
    assert gpt2.non_embedding_params(m) == 124_439_808 - 50257 * 768 - 1024 * 768


def test_lstm_formula_hand_count():
    seq2seq.register_lstm_formulas()
    seq2seq.register_lstm_formulas()  # idempotent
    m = seq2seq.Seq2Seq(seq2seq.Seq2SeqConfig(layers=2, hidden=64, embed=64, src_vocab=100, tgt_vocab=100))
    src = torch.randint(0, 100, (4, 10))
    fc = pyprof.count_flops(lambda: m(src, src).sum().backward())
    ops = fc.by_op
    if "aten.mkldnn_rnn_layer" not in ops:
        pytest.skip("this torch build does not run CPU LSTMs through aten.mkldnn_rnn_layer")
    # per layer: tokens 4*10 = 40; 2 x 40 x (256*64 + 256*64) = 2,621,440; 2 layers x (encoder + decoder) = 4 layers
    assert ops["aten.mkldnn_rnn_layer"].flops == 4 * 2_621_440
    assert ops["aten.mkldnn_rnn_layer_backward"].flops == 2 * 4 * 2_621_440
