"""A service's background task: started once, cancelled and awaited on stop."""
from __future__ import annotations

import asyncio


class Background:
    """Subclasses implement ``_run()`` (a loop); ``start()`` and ``stop()`` manage its task."""

    task_name = "huqi-background"
    _task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        raise NotImplementedError
