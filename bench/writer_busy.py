"""Single-row write ops through the store's writer (SQLite) while the event loop is busy, as under HTTP load.

``BUSY`` tasks each burn 0.5 ms of CPU and yield, so an event-loop iteration takes about ``BUSY`` x 0.5 ms;
``N`` single-row INSERT operations go through ``Store.write``, 64 at a time. Prints ops/s and latency. Compare
revisions with ``PYTHONPATH=<a git archive's src>`` (bench/NOTES.md, "Load").

    .venv/bin/python bench/writer_busy.py [BUSY=20] [N=3000]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from citydata.clock import SystemClock
from citydata.config import load_settings
from citydata.store import create_store


async def main(busy: int, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        st = create_store(load_settings(environ={}, data_dir=Path(tmp)), SystemClock())
        await st.start()
        await st.write(lambda c: c.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")))
        stop = False

        async def burner() -> None:
            while not stop:
                t = time.perf_counter()
                while time.perf_counter() - t < 0.0005:   # 0.5 ms of "request handling"
                    pass
                await asyncio.sleep(0)

        burners = [asyncio.create_task(burner()) for _ in range(busy)]
        lat: list[float] = []
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with sem:
                t = time.perf_counter()

                def op(c: Any) -> Any:
                    return c.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"x{i}"})

                await st.write(op)
                lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        took = time.perf_counter() - t0
        stop = True
        await asyncio.gather(*burners)
        lat.sort()
        assert st.writer is not None
        print(f"busy={busy}: {n / took:.0f} ops/s, p50 {lat[len(lat) // 2] * 1000:.1f} ms, "
              f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms, commits {st.writer.stats.commits}")
        await st.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20, int(sys.argv[2]) if len(sys.argv) > 2 else 3000))
