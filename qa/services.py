"""What the web layer asks of the model: answers as plain dicts (from the reader, the QA
algorithm), and the model's status.

Views, forms and commands call these functions only; they never touch a backend or tensors.
"""

import functools
import threading
import time

from django.conf import settings

from qa.model.files import model_name, model_quantization
from qa.model.holder import LazyAnswerer, ModelState
from qa.operations import metrics
from qa.reader.errors import InvalidQuestion, ModelLoadError, ModelUnavailable, TooMuchWork
from qa.reader.options import OPTION_NAMES, Options

# One holder per configured model (tests change the settings), made under a lock: two threads
# asking at once for a model not asked for yet get the same holder, so the model loads once.
_holders: dict[tuple, LazyAnswerer] = {}
_holders_lock = threading.Lock()


def _load_answerer(model: str, **options):
    # Imported when the model loads, not above: the loader brings numpy and the tokenizer, which
    # a first page from cold should not wait for.
    from qa.model.loading import load_answerer

    return load_answerer(model, **options)


def _new_holder(
    model: str, revision: str | None, engine: str, threads: int, cache_dir, fast: bool
) -> LazyAnswerer:
    options = {
        "revision": revision,
        "engine": engine,
        "threads": threads,
        "cache_dir": cache_dir,
        "fast": fast,
    }
    return LazyAnswerer(_timed_load(functools.partial(_load_answerer, model, **options)))


def _timed_load(load):
    """``load``, recording each attempt's duration as the ModelLoadTime metric (ms), and each
    failure as ModelLoadFailures."""

    def timed():
        started = time.perf_counter()
        try:
            return load()
        except Exception:
            metrics.add("ModelLoadFailures", "Count", 1)
            raise
        finally:
            metrics.add("ModelLoadTime", "Milliseconds", (time.perf_counter() - started) * 1000)

    return timed


def lazy_answerer() -> LazyAnswerer:
    """The process-wide model holder for the configured model: the same object in every thread,
    so that however many threads ask (requests, qasite.wsgi's background loader) the model loads
    once per process."""
    key = (
        settings.QA_MODEL,
        settings.QA_MODEL_REVISION,
        settings.QA_ENGINE,
        settings.QA_THREADS,
        settings.QA_CACHE_DIR,
        settings.QA_FAST,
    )
    with _holders_lock:
        holder = _holders.get(key)
        if holder is None:
            holder = _holders[key] = _new_holder(*key)
        return holder


def _public_reason(error) -> str:
    """Why the model is missing, with file paths only where DEBUG allows them."""
    return str(error) if settings.DEBUG else error.reason


def answer_questions(*, questions: list[dict]) -> list[dict]:
    """Answer each validated question (a dict of question, context and any of Options' fields),
    in order.

    Each result holds the best answer at top level (answer, score, start, end, no_answer: offsets
    in characters of the context), how many windows the context was read in (``windows``: each
    scored on its own, so scores from different windows are not shares of one whole), and the
    ``top_k`` candidates, best first, in ``answers``.
    Every question's windows are settled before the model runs on any: their tokens (windows x
    max_seq_len), summed over the call, may be at most qa.reader.answerer.MAX_BATCH_TOKENS.
    Raises InvalidQuestion (with ``index`` set to the question at fault), TooMuchWork or
    ModelUnavailable.
    """
    from qa.reader.answerer import MAX_BATCH_TOKENS  # loaded by lazy_answerer() already

    holder = lazy_answerer()
    try:
        answerer = holder.get(timeout=settings.QA_LOAD_WAIT_SECONDS)
    except ModelLoadError as error:
        raise ModelUnavailable(_public_reason(error), holder.seconds_until_retry()) from error
    planned = []
    for index, question in enumerate(questions):
        options = Options(**{name: question[name] for name in OPTION_NAMES if name in question})
        try:
            planned.append(answerer.windows(question["question"], question["context"], options))
        except InvalidQuestion as error:
            error.index = index
            raise
    tokens = sum(windows.tokens for windows in planned)
    if tokens > MAX_BATCH_TOKENS:
        raise TooMuchWork(tokens, MAX_BATCH_TOKENS)
    results = []
    for windows in planned:
        answers = answerer.answer_windows(windows)
        best = answers[0]  # the engine always gives one (the no-answer when no span can be)
        # vars, not dataclasses.asdict: these are flat, and asdict's deep copy costs more.
        results.append(
            {
                **vars(best),
                "windows": windows.count,
                "answers": [dict(vars(answer)) for answer in answers],
            }
        )
    # Answers given, and for each whether it is the no-answer (100) or a span (0): the
    # NoAnswer metric's average is the share of no-answers, in percent.
    metrics.add("Answers", "Count", len(results))
    for result in results:
        metrics.add("NoAnswer", "Percent", 100 if result["no_answer"] else 0)
    return results


def model_status() -> dict:
    """Which model is served, how its graph is quantized (None: float32; from the bake record,
    qa.model.files.model_quantization), whether it is loaded, loading or failed (and why), and
    once loaded the engine that serves it ("onnx" or "torch": torch also where QA_ENGINE=onnx
    could not export the model, qa.model.loading.load_forward)."""
    holder = lazy_answerer()
    state = holder.state
    error = holder.error if state == ModelState.FAILED else None
    return {
        "model": settings.QA_MODEL_NAME or model_name(settings.QA_MODEL),
        "quantization": model_quantization(settings.QA_MODEL),
        "state": state,
        "engine": holder.get().engine if state == ModelState.READY else None,
        "error": _public_reason(error) if error else None,
    }


def measure() -> dict:
    """What a deployed instance reports when asked (a direct ``{"measure": true}`` invocation):
    its CPU (qa.operations.measure.cpu), the model served and its quantization, the engine's
    threads, and
    the median latency in ms of answering Kit-Ho Mak and 20,000 characters in this process
    (qa.operations.measure.latency). Raises ModelUnavailable if the model cannot be loaded."""
    from qa.operations.measure import cpu, latency

    holder = lazy_answerer()
    try:
        answerer = holder.get(timeout=settings.QA_LOAD_WAIT_SECONDS)
    except ModelLoadError as error:
        raise ModelUnavailable(_public_reason(error), holder.seconds_until_retry()) from error
    return {
        **cpu(),
        "model": settings.QA_MODEL_NAME or model_name(settings.QA_MODEL),
        "quantization": model_quantization(settings.QA_MODEL),
        "threads": settings.QA_THREADS,
        "latency_ms": latency(answerer),
    }
