"""The model side: a model's files, its tokenizer, the backends that run it (ONNX Runtime,
TorchScript), loading it into a reader, and the process's model holder.

No Django: the web layer reaches it through qa/services.py (import-linter holds it).
"""
