"""The process's model holder: loads the answerer once, on first use or in the background."""

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING

from qa.reader.errors import ModelLoadError, one_line

if TYPE_CHECKING:
    from qa.reader.answerer import QuestionAnswerer

logger = logging.getLogger(__name__)


class ModelState(StrEnum):
    """Where the model holder is: not asked for yet, loading, loaded, or failed (retried later)."""

    IDLE = "idle"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class LazyAnswerer:
    """Loads the answerer once, when first needed or in a background thread, never twice at once.

    A failed load is remembered (so health can say why) and retried on a later request, waiting
    longer after each failure, so that the service recovers without a restart once fixed.
    """

    def __init__(
        self,
        load: Callable[[], "QuestionAnswerer"],
        *,
        retry_after: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._load = load
        self._clock = clock  # injectable, so that tests can step past a back-off without sleeping
        self._lock = threading.Lock()
        self._answerer: QuestionAnswerer | None = None
        self._error: ModelLoadError | None = None
        self._loading = False
        self._failures = 0
        self._next_try = 0.0
        self.retry_after = retry_after

    @property
    def state(self) -> ModelState:
        if self._answerer is not None:
            return ModelState.READY
        if self._loading:
            return ModelState.LOADING
        return ModelState.FAILED if self._error is not None else ModelState.IDLE

    @property
    def error(self) -> ModelLoadError | None:
        return self._error

    def seconds_until_retry(self) -> int:
        return max(1, round(self._next_try - self._clock()))

    def get(self, *, timeout: float = -1) -> "QuestionAnswerer":
        """The loaded answerer; loads it if needed. Raises ModelLoadError if it cannot be had.

        ``timeout`` bounds the wait for a load already under way in another thread.
        """
        answerer = self._answerer
        if answerer is not None:
            return answerer
        if not self._lock.acquire(timeout=timeout):
            raise ModelLoadError("The model is still loading.")
        try:
            if self._answerer is None:
                if self._error is not None and self._clock() < self._next_try:
                    raise self._error
                self._load_now()
            if self._answerer is None:
                raise self._error
            return self._answerer
        finally:
            self._lock.release()

    def load_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self._load_quietly, name="qa-model-loader", daemon=True)
        thread.start()
        return thread

    def _load_quietly(self) -> None:
        try:
            self.get()
        except ModelLoadError:
            pass  # remembered in self._error, reported by health and by requests

    def _load_now(self) -> None:
        self._loading = True
        started = time.monotonic()
        try:
            self._answerer = self._load()
            self._error = None
            self._failures = 0
            logger.info("QA model loaded in %.2f s", time.monotonic() - started)
        except ModelLoadError as error:
            self._fail(error)
        except Exception as error:  # any other bug in loading must not take the service down
            self._fail(ModelLoadError("The model could not be loaded.", repr(error)))
        finally:
            self._loading = False

    def _fail(self, error: ModelLoadError) -> None:
        self._error = error
        self._failures += 1
        delay = min(self.retry_after * 2 ** (self._failures - 1), 60.0)
        self._next_try = self._clock() + delay
        logger.error("QA model failed to load (%s); next try in %.0f s", one_line(error), delay)
