"""The errors qasite's reader, model loader and service raise, in plain Python.

Nothing here knows of Django or HTTP: ``qa/exceptions.py`` maps these to HTTP statuses, in the one
exception handler both JSON APIs go through; the form view and ``manage.py ask`` show their
messages. Each message is safe to show the user who caused it.
"""


class ModelLoadError(Exception):
    """The model cannot be loaded. ``reason`` is safe to show anyone (no filesystem paths);
    ``str(error)`` adds the detail (paths, the underlying error) for operators."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason = reason


class ModelUnavailable(Exception):
    """No answer can be given now (the model failed to load, or is still loading);
    ``retry_after`` seconds from now it may work."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class InvalidQuestion(ValueError):
    """The question, context or options cannot be answered as given; the message says why.

    ``field`` names the input at fault (``question``, ``context`` or an option of
    ``qa.reader.options.Options``); ``index`` is the position of the question at fault in a batch
    (0 for
    a single question).
    """

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field
        self.index = 0


class BatchTooLarge(ValueError):
    """A batch whose questions and contexts hold more characters than one call may: the work of
    a call grows with its text, and must end well within the function's timeout."""

    def __init__(self, characters: int, limit: int):
        super().__init__(
            f"This batch holds {characters} characters of questions and contexts; one call may "
            f"hold at most {limit}. Send it as smaller batches."
        )
        self.characters = characters
        self.limit = limit


class TooMuchWork(ValueError):
    """Questions of one call that each fit, but together would put more tokens (windows x
    max_seq_len) through the model than one call may: the bound on a call's work."""

    def __init__(self, tokens: int, limit: int):
        super().__init__(
            f"These questions would put {tokens} tokens through the model (windows x "
            f"max_seq_len, summed over the batch); one call may put at most {limit}. Send them "
            "as smaller batches, or with fewer windows each (a lower doc_stride)."
        )
        self.tokens = tokens
        self.limit = limit


def one_line(error: BaseException, *, limit: int = 300) -> str:
    """``error`` as one line of a log: its type and the first line of its message, at most
    ``limit`` characters. Some libraries' errors run to thousands of lines (torch.jit.trace's
    check prints both graphs); a log line says what failed, the rest is noise."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0].strip()}" if lines else type(error).__name__
    if len(lines) > 1:
        text += f" (+{len(lines) - 1} lines)"
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
