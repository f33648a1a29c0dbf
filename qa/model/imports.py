"""One lock for the heavy libraries a model load imports lazily (torch, transformers).

Python's import system locks each module while it runs, but transformers resolves its names
lazily, after its own module is imported: a second thread reading ``transformers`` while the first
is still importing into it can be told a name does not exist (``ImportError: cannot import name
'AutoModelForQuestionAnswering'``). Every lazy import of these libraries holds IMPORT_LOCK, so
that one thread at a time imports them; it is re-entrant, since one such import leads to another.
"""

import threading

IMPORT_LOCK = threading.RLock()
