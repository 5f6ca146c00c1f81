"""pyprof.bench.models: published parameter counts, and the LSTM FLOP formula against a hand count."""

import pytest
import torch

from pyprof.bench.models import gpt2, seq2seq, vision


def _params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("make, published", [
    (vision.alexnet, 61_100_840),      # torchvision's AlexNet
    (vision.resnet18, 11_689_512),     # He et al. 2015, torchvision resnet18
    (vision.resnet50, 25_557_032),     # He et al. 2015, torchvision resnet50 (v1.5: stride in the 3x3)
    (vision.mobilenet_v2, 3_504_872),  # Sandler et al. 2018, width 1.0
])
def test_vision_parameter_counts(make, published):
    assert _params(make()) == published


def test_gpt2_small_parameter_count():
    # wte 50257*768 + wpe 1024*768 + 12 x 7,087,872 per block + final LN 1536 = 124,439,808 (tied output)
    m = gpt2.GPTLM()
    assert _params(m) == 124_439_808
    assert gpt2.non_embedding_params(m) == 124_439_808 - 50257 * 768 - 1024 * 768


def test_vision_models_run_small_inputs():
    for make in (vision.alexnet, vision.resnet18, vision.mobilenet_v2):
        assert make(num_classes=7)(torch.randn(1, 3, 112, 112)).shape == (1, 7)


def test_lstm_formula_hand_count():
    import pyprof

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
