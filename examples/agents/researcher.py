#!/usr/bin/env python3
"""An Agentvisor agent in Python, speaking systemd's notify protocol on $NOTIFY_SOCKET.

No library needed: each message is one datagram of newline-separated KEY=VALUE lines. The same
program runs unchanged under systemd (Type=notify), which ignores the X_ keys. To run it under
the launcher, add to agents.toml:

    [[agent]]
    name = "researcher"
    command = "python3"
    args = ["examples/agents/researcher.py"]
    ready = "notify"
    heartbeat_timeout = "15s"
"""

import os
import random
import socket
import time


def notify(**fields):
    """Sends KEY=VALUE lines to the launcher (or systemd); a no-op when not supervised."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):  # an abstract socket, as systemd may use
        path = "\0" + path[1:]
    message = "\n".join(f"{key}={value}" for key, value in fields.items())
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), path)


def main():
    # WATCHDOG_USEC is the heartbeat timeout; ping at half of it, as sd_notify clients do.
    interval = int(os.environ.get("WATCHDOG_USEC", "10000000")) / 2e6
    notify(STATUS="loading")
    time.sleep(1)
    notify(READY=1, STATUS="researching", X_MODEL="demo-llm-70b")
    tokens_in = tokens_out = 0
    question = 0
    while True:
        question += 1
        tokens_in += random.randint(500, 4000)
        tokens_out += random.randint(100, 900)
        cost = tokens_in * 3e-6 + tokens_out * 15e-6
        notify(
            WATCHDOG=1,
            X_TASK=f"researching question {question}",
            X_TOKENS_IN=tokens_in,
            X_TOKENS_OUT=tokens_out,
            X_COST=f"{cost:.4f}",
            X_METRIC_SOURCES_READ=random.randint(3, 20),
        )
        print(f"question {question} done", flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    main()
