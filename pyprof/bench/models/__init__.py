"""Models the suite defines itself, in plain ``torch.nn``.

- ``vision``: AlexNet, VGG-11, GoogLeNet, ResNet-18, ResNet-50 and MobileNetV2, layer for layer as torchvision defines
  them (for where ``torchvision.models`` does not import beside the installed torch).
- ``mobile``: ShuffleNetV2 1x and EfficientNet-B0 as torchvision defines them; MobileNet v1 and ShuffleNet v1 1x (g = 3),
  which torchvision does not have, from their papers.
- ``gpt2``: the GPT-2-small-shaped LM; ``seq2seq``: the LSTM seq2seq (with its LSTM FLOP formula).

Together with torchvision these cover every architecture of "Measuring the Algorithmic Efficiency of Neural Networks"
(Hernandez & Brown 2020), Table 1 and Figure 4. Each vision model's parameter count and forward multiply-adds at 224x224
are checked against the published figures, and against torchvision's own model where it imports, in
``tests/test_bench_models.py``.
"""
