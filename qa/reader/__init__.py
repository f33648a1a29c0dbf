"""The QA algorithm, as transformers v4's question-answering pipeline runs it: a question and a
context cut into windows, the model's start/end logits decoded into character spans.

Plain Python, numpy and tokenizers: no Django, no torch, no ONNX Runtime (import-linter holds it).
"""
