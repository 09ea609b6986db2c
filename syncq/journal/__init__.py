"""A durable SQLite record of tasks, so a killed batch resumes where it stopped.

Each task is a row: the dotted name of an importable function, its arguments as
JSON, an optional key, and its state: ``pending``, ``running``, ``done`` or
``failed``. Every process that opens the journal registers a *run* and renews its
lease with a heartbeat. A task belongs to the run that queued it. When a run ends,
or its process is gone, or its lease runs out, the next run to open the journal
takes over its pending and running tasks and runs them again. Execution is
therefore at least once: a task that was running when its process died runs a
second time.
"""

from __future__ import annotations

# The pool records tasks with the three functions, and tests check the file
# format with the constants. The "as" form re-exports them without adding them
# to __all__.
from syncq.journal._encoding import encode_arguments as encode_arguments
from syncq.journal._encoding import function_name as function_name
from syncq.journal._encoding import resolve_function as resolve_function
from syncq.journal._journal import Journal
from syncq.journal._schema import APPLICATION_ID as APPLICATION_ID
from syncq.journal._schema import SCHEMA_VERSION as SCHEMA_VERSION
from syncq.journal._tasks import JournalTask, TaskState

__all__ = ["Journal", "JournalTask", "TaskState"]
