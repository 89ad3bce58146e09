"""The training loop's one test-only seam: fault injection for the kill/resume and DDP tests.

``SESN_FAULT_KILL_AT=E`` makes the process kill itself with SIGKILL right after the
checkpoint of epoch E (1-based) is written, and ``SESN_FAULT_KILL_AT=E.B`` at batch B of
epoch E, before that batch's optimizer step; ``SESN_FAULT_NAN_RANK=r`` makes rank r's loss
NaN. Both are read through :mod:`sesn.settings`; unset, these functions do nothing.
"""

from __future__ import annotations

import os
import signal
import sys

from sesn import settings


def kill_point(epoch: int, batch: int | None = None) -> None:
    """Kill this process (SIGKILL, as ``kill -9``) where ``SESN_FAULT_KILL_AT`` says (1-based)."""
    where = settings.fault_kill_at()
    if where and where == (f"{epoch}" if batch is None else f"{epoch}.{batch}"):
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def poison_loss(loss, rank: int):
    """``loss`` made NaN on the rank ``SESN_FAULT_NAN_RANK`` names; else ``loss`` itself."""
    nan_rank = settings.fault_nan_rank()
    return loss * float("nan") if nan_rank is not None and nan_rank == rank else loss
