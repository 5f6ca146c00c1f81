"""Models the suite defines itself: the GPT-2-small-shaped LM and the LSTM seq2seq the issue asks for, and faithful
re-implementations of three seed architectures (AlexNet as in torchvision, ResNet-18, MobileNetV2) so the CPU suite
covers seed architectures where torchvision does not import. Each is checked against its published parameter count in
``tests/test_bench_models.py``.
"""
