"""The model holder: loads once per process, remembers failures, retries with back-off."""

import threading

import pytest

from qa.model.holder import LazyAnswerer
from qa.reader.errors import ModelLoadError
from tests.helpers import PATIENCE

THREADS = 8


def test_lazy_answerer_loads_once_however_many_threads_ask():
    """The load lasts until every thread has asked (and the background loader too), however
    slowly the threads start."""
    calls, asked = [], threading.Semaphore(0)

    def slow_load():
        calls.append(1)
        for _ in range(THREADS):
            assert asked.acquire(timeout=PATIENCE), "a thread never asked"
        return object()

    holder = LazyAnswerer(slow_load)
    assert holder.state == "idle"
    got = []

    def ask():
        asked.release()
        got.append(holder.get())

    threads = [threading.Thread(target=ask) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    holder.load_in_background().join()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(got) == THREADS and len(set(map(id, got))) == 1
    assert holder.state == "ready"


def test_lazy_answerer_reports_loading_while_it_loads_in_the_background():
    started, release = threading.Event(), threading.Event()
    holder = LazyAnswerer(lambda: started.set() or (release.wait(PATIENCE) and "answerer"))
    thread = holder.load_in_background()
    assert started.wait(PATIENCE), "the background load never started"
    assert holder.state == "loading"
    with pytest.raises(ModelLoadError, match="still loading"):
        holder.get(timeout=0.05)
    release.set()
    thread.join()
    assert holder.get() == "answerer"


def test_lazy_answerer_remembers_failure_then_retries_with_backoff_and_recovers(manual_clock):
    attempts = []

    def flaky_load():
        attempts.append(1)
        if len(attempts) < 3:
            raise ModelLoadError("The model directory does not exist.")
        return "answerer"

    holder = LazyAnswerer(flaky_load, retry_after=2, clock=manual_clock)
    with pytest.raises(ModelLoadError):
        holder.get()
    assert holder.state == "failed" and holder.error.reason.startswith("The model directory")
    assert holder.seconds_until_retry() == 2
    manual_clock.advance(1.9)
    with pytest.raises(ModelLoadError):
        holder.get()  # within the back-off: no new attempt
    assert len(attempts) == 1
    manual_clock.advance(0.1)
    with pytest.raises(ModelLoadError):
        holder.get()
    assert len(attempts) == 2
    assert holder.seconds_until_retry() == 4  # the second failure doubled the wait
    manual_clock.advance(3.9)
    with pytest.raises(ModelLoadError):
        holder.get()
    assert len(attempts) == 2
    manual_clock.advance(0.1)
    assert holder.get() == "answerer"
    assert holder.state == "ready" and holder.error is None


def test_lazy_answerer_back_off_doubles_up_to_a_minute(manual_clock):
    def failing_load():
        raise ModelLoadError("The model directory does not exist.")

    holder = LazyAnswerer(failing_load, retry_after=2, clock=manual_clock)
    waits = []
    for _ in range(8):
        with pytest.raises(ModelLoadError):
            holder.get()
        waits.append(holder.seconds_until_retry())
        manual_clock.advance(waits[-1])
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]


def test_unexpected_loading_bug_becomes_a_load_error():
    holder = LazyAnswerer(lambda: 1 / 0)
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        holder.get()


def test_a_failed_load_is_logged_in_one_line(caplog):
    """However long the error (torch's can hold whole graphs), one line says why."""

    def failing_load():
        raise RuntimeError("Tracing failed sanity checks!\n" + "graph(%x):\n" * 500)

    with pytest.raises(ModelLoadError):
        LazyAnswerer(failing_load).get()
    [record] = [r for r in caplog.records if r.name == "qa.model.holder"]
    assert "\n" not in record.getMessage()
    assert record.getMessage().startswith("QA model failed to load (ModelLoadError: ")
