"""A second core for JPEG-family decoding: one warm helper process beside the reader.

The JPEG, JPEG-LS and JPEG 2000 codecs hold the GIL while they decode (pylibjpeg's libjpeg
binding releases nothing), so threads cannot use another core; a process can. One helper is
started on the first long compressed cine and kept for the life of the program, so its start
(an interpreter and the codecs, about a second) is paid once; until it is ready the reader
decodes alone. Then the reader hands it a frame whenever it has room and decodes the others
itself: the work splits by speed, frames are stored by index, and a frame's round trip through
the pipes (about 0.15 ms for 512 px) is small beside its decode (about 10 ms).

The helper is a plain `python -c` child speaking pickles over its stdin/stdout, not a
multiprocessing pool: a pool re-imports the caller's main script in the child, which a script
without a `__main__` guard would run again. If the helper dies or cannot start, reading goes
on in this process: a helper's failure is never reported as a problem with the file.
ANGIOSCRIBE_DECODE_HELPER=0 turns it off.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from pydicom.uid import UID, RLELossless

# Frames a cine needs before the helper is worth starting, and frames it holds at once.
HELPER_MIN_FRAMES = 8
HELPER_FRAMES_IN_FLIGHT = 2
# A frame the helper has not returned in this time is decoded here instead (a hung codec).
HELPER_FRAME_TIMEOUT_S = 120.0
# Pipe size asked for, so a frame written to either side does not wait for the other.
PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031  # fcntl command (Linux)

_SERVE = "from angioscribe.io.decode_helper import serve; serve()"
_READY = "ready"

_helper: Helper | None = None
_helper_lock = threading.Lock()
_disabled = False
_cines = itertools.count()  # tags each cine's calls, so a stale answer is never taken for another


def helper_for(syntax: UID, frames: int) -> Helper | None:
    """The warm helper, claimed for one cine, if the cine is worth sharing and the helper is
    ready and free (one reading thread at a time uses it); starts it otherwise."""
    global _helper, _disabled
    if _disabled or not _wanted(syntax, frames):
        return None
    with _helper_lock:
        if _helper is None:
            try:
                _helper = Helper()
            except OSError:  # no processes here: decode alone
                _disabled = True
                return None
        if _helper.dead:
            _disabled = True
            return None
    if _helper.ready.is_set() and _helper.in_use.acquire(blocking=False):
        return _helper
    return None


def _wanted(syntax: UID, frames: int) -> bool:
    """Costly codecs (not RLE, not native data), enough frames, a second core, not disabled."""
    if os.environ.get("ANGIOSCRIBE_DECODE_HELPER", "1") == "0" or (os.cpu_count() or 1) < 2:
        return False
    return syntax.is_encapsulated and syntax != RLELossless and frames >= HELPER_MIN_FRAMES


class Helper:
    """The child process, a thread that receives its answers, and one answer queue per call."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for stream in (self._process.stdin, self._process.stdout):
            _widen(stream)
        self.ready = threading.Event()
        self.in_use = threading.Lock()
        self.dead = False
        self._answers: queue.Queue[tuple[int, int, bool, Any]] = queue.Queue()
        self._write_lock = threading.Lock()
        threading.Thread(target=self._receive, daemon=True, name="decode-helper").start()
        atexit.register(self.close)

    def send(
        self, cine: int, call: Callable[[int, bytes], Any], index: int, encoded: bytes
    ) -> bool:
        """Ask for `call(index, encoded)` for `cine`; False when the helper is gone."""
        message = (cine, call, index, encoded)
        try:
            with self._write_lock:
                pickle.dump(message, self._process.stdin, pickle.HIGHEST_PROTOCOL)
                self._process.stdin.flush()
            return True
        except (OSError, ValueError, pickle.PicklingError):
            self._die()
            return False

    def answer(self, block: bool) -> tuple[int, int, bool, Any] | None:
        """(cine, index, ok, frame or error) of a finished call; None if none or if it died."""
        try:
            item = self._answers.get(block=block, timeout=HELPER_FRAME_TIMEOUT_S if block else None)
        except queue.Empty:
            if block:
                self._die()
            return None
        return None if item[0] < 0 else item

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()

    def _receive(self) -> None:
        try:
            if pickle.load(self._process.stdout) == _READY:
                self.ready.set()
            while True:
                self._answers.put(pickle.load(self._process.stdout))
        except (EOFError, OSError, pickle.UnpicklingError):
            self._die()

    def _die(self) -> None:
        self.dead = True
        self._answers.put((-1, -1, False, None))  # wakes a waiting reader
        self.close()


def _widen(stream: Any) -> None:
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, OSError):  # other systems, or a lower pipe-max-size: default pipes
        pass


def serve() -> None:
    """The helper's loop: read (cine, call, index, encoded), answer (cine, index, ok, result)."""
    import angioscribe.io.dicom_pixels  # noqa: F401 - pydicom and the codecs, before 'ready'

    source, sink = sys.stdin.buffer, sys.stdout.buffer
    pickle.dump(_READY, sink)
    sink.flush()
    while True:
        try:
            cine, call, index, encoded = pickle.load(source)
        except EOFError:
            return
        try:
            answer = (cine, index, True, call(index, encoded))
        except Exception as error:  # reported to the reader, which raises it for the frame
            answer = (cine, index, False, error)
        pickle.dump(answer, sink, pickle.HIGHEST_PROTOCOL)
        sink.flush()


class SharedDecoding:
    """Decode frames here and in the helper; `store(index, frame)` receives each once.

    `decode(index, encoded)` must be picklable (a partial of a module function) for the helper
    to run it too. Errors keep their frame: the earliest bad frame is the one reported.
    """

    def __init__(
        self,
        decode: Callable[[int, bytes], np.ndarray],
        helper: Helper | None,
        store: Callable[[int, np.ndarray], None],
    ) -> None:
        self._decode = decode
        self._helper = helper
        self._store = store
        self._pending: dict[int, bytes] = {}
        self._cine = next(_cines)

    def add(self, index: int, encoded: bytes) -> None:
        self._collect(block=False)
        helper = self._helper
        if helper is not None and len(self._pending) < HELPER_FRAMES_IN_FLIGHT:
            if helper.send(self._cine, self._decode, index, encoded):
                self._pending[index] = encoded
                return
        try:
            self._store(index, self._decode(index, encoded))
        except Exception:
            self.finish()  # an earlier frame's error, if any, is the one to report
            raise

    def finish(self) -> None:
        """Wait for the frames still at the helper (decoding them here if it dies)."""
        while self._pending:
            self._collect(block=True)

    def close(self) -> None:
        """Free the helper for the next cine (answers still due to this one will be dropped)."""
        if self._helper is not None:
            self._helper.in_use.release()
            self._helper = None

    def _collect(self, block: bool) -> None:
        errors: list[tuple[int, Exception]] = []
        while self._pending and self._helper is not None:
            answer = self._helper.answer(block)
            if answer is None:
                if self._helper.dead:
                    self._take_back()
                break
            cine, index, ok, value = answer
            if cine != self._cine:  # due to a cine abandoned after an error
                continue
            del self._pending[index]
            if ok:
                self._store(index, value)
            else:
                errors.append((index, value))
            block = False
        if errors:
            raise min(errors, key=lambda error: error[0])[1]

    def _take_back(self) -> None:
        """The helper died: decode its frames here, and go on without it."""
        self.close()
        for index in sorted(self._pending):
            self._store(index, self._decode(index, self._pending.pop(index)))
