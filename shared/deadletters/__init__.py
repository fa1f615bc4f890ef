"""Dead letters as an operator API: what each consumer could not process, kept and re-drivable.

The consumer runner records every dead letter in its service's ``dead_letters``
table (besides ``<topic>.dlq``); every service mounts the same router to list
them and re-drive one to its source topic.
"""

from shared.deadletters.store import DeadLetterEntry, DeadLetterStore

__all__ = ["DeadLetterEntry", "DeadLetterStore"]
