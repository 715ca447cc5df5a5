"""Running `rulelang serve`: one process, or worker processes that share one listening socket.

An explained visit is about a millisecond of Python, and one Python process uses one core
however many threads it runs. With several workers (the default: one a core, at most four)
the server opens the socket and starts that many processes, each a whole server (API and
workbench) accepting connections on it; the kernel gives each connection to one of them.
They share what must be shared — the settlements — through the server's scratch
directory (`server.SettlementLedger`); each loads rulebooks itself.

In each process the event loop runs on a deep-stack thread (`language/deep.py`), so a small
request is evaluated where it was read, without a hand-off. A worker ends when the server
does: it holds one end of a pipe whose other end only the server holds.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Optional

from ..language.deep import run_deep


def serve(data: dict, token: Optional[str], host: str, port: int, workers: int) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM). Called on the main thread: it handles signals."""
    import uvicorn

    from .http import create_app
    from .server import Service

    signal.signal(signal.SIGTERM, _interrupted)  # as Ctrl-C: the scratch directory is removed on the way out
    if workers <= 1:
        app = create_app(Service(data, token))
        try:
            run_deep(uvicorn.run, app, host=host, port=port, log_level="warning")
        except KeyboardInterrupt:
            pass
        return
    import multiprocessing

    scratch = Path(tempfile.mkdtemp(prefix="rulelang-serve-"))
    context = multiprocessing.get_context("spawn")  # a fork of a process with threads may copy a held lock
    listening = uvicorn.Config(app=None, host=host, port=port, log_level="warning").bind_socket()
    watched, held = context.Pipe(duplex=False)  # the workers watch; only the server holds the other end
    processes = [context.Process(target=_worker, name=f"rulelang serve worker {n + 1}",
                                 args=(data, token, str(scratch), listening, watched))
                 for n in range(workers)]

    def ended() -> None:
        held.close()  # every worker sees its pipe close, and stops
        for process in processes:
            if process.pid is None:  # never started
                continue
            process.join(5)
            if process.is_alive():
                process.terminate()
        listening.close()
        shutil.rmtree(scratch, ignore_errors=True)

    try:
        for process in processes:
            process.start()
        watched.close()  # the workers have it
        while any(process.is_alive() for process in processes):
            for process in processes:
                process.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        ended()


def _interrupted(*_) -> None:
    raise KeyboardInterrupt


def _worker(data: dict, token: Optional[str], scratch: str, listening, watched) -> None:
    """One worker process: a whole server on the shared socket, until the server ends."""
    import uvicorn

    from .http import create_app
    from .server import Service

    server = uvicorn.Server(uvicorn.Config(create_app(Service(data, token, Path(scratch))), log_level="warning"))

    def watch() -> None:
        try:
            watched.recv()  # nothing is ever sent: it returns when the server's end closes
        except (EOFError, OSError):
            pass
        server.should_exit = True

    threading.Thread(target=watch, name="server watch", daemon=True).start()
    try:
        run_deep(server.run, sockets=[listening])
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the terminal's group
        pass
