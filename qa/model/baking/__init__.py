"""Build time: the torch model exported to ONNX and checked, the graphs cached for directories
without one, legacy tokenizer files converted, and what ``manage.py bake_model`` writes. The only
modules (with the torch backend) that import torch and transformers.
"""
