"""Send results from an MTA's own log: Postfix and Exim.

LogReader      -- lines → send-result records (prefix, format, join, validate, count)
LogFile        -- complete lines of a file, followed across rotations, from a Position
stream_chunks  -- complete lines of a pipe
Checkpoint, load_checkpoint, save_checkpoint -- where a restart resumes
"""

from bouncewire.producers.mta_log.follower import Position
from bouncewire.producers.mta_log.reader import MTAS, LineNotUnderstood, LogReader, Mta
from bouncewire.producers.mta_log.tail import (
    Checkpoint,
    Chunk,
    LogFile,
    load_checkpoint,
    save_checkpoint,
    stream_chunks,
)

__all__ = [
    "MTAS",
    "Checkpoint",
    "Chunk",
    "LineNotUnderstood",
    "LogFile",
    "LogReader",
    "Mta",
    "Position",
    "load_checkpoint",
    "save_checkpoint",
    "stream_chunks",
]
