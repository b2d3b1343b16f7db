"""Entry point of the consumer process: `python -m eventlens.ingest.consumer_main --data-dir D`.

Exits 0 on SIGTERM after finishing the batch in hand, 1 on an error (the supervisor
restarts it with backoff), and on its own when its parent (the server) is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from eventlens.config import Settings
from eventlens.ingest.consumer import Consumer
from eventlens.observability.logging import configure_logging, get_logger
from eventlens.observability.tracing import configure_tracing, shutdown_tracing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eventlens-consumer")
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = Settings().with_data_dir(args.data_dir)
    configure_logging(settings.log_level)
    log = get_logger("eventlens.ingest.consumer")
    try:
        configure_tracing("eventlens-consumer")
    except ValueError as exc:  # the server refused it at start already; ingest goes on
        log.warning("consumer.tracing_off", error=str(exc))
    parent = os.getppid()
    stopping = False
    consumer: Consumer | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if consumer is not None:
            consumer.wake()

    signal.signal(signal.SIGTERM, on_signal)
    # Ctrl-C reaches the whole process group: let the server shut down first and stop us with
    # SIGTERM from its lifespan, instead of its supervisor seeing us die and restarting us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def should_stop() -> bool:
        # An orphan (server killed alone) must not keep writing next to a new server's consumer.
        return stopping or os.getppid() != parent

    try:
        consumer = Consumer(settings)
    except Exception as exc:
        log.error("consumer.open_failed", error=str(exc))
        return 1
    try:
        consumer.run(should_stop)
    except Exception as exc:
        log.exception("consumer.failed", error=str(exc))
        consumer.error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            consumer.write_status()
        return 1
    finally:
        consumer.close()
        shutdown_tracing()  # export the last commit spans before the process goes
    log.info("consumer.stop", checkpoint=consumer.offset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
