"""`hetang-agent run` started the way a test chooses: its own flags and environment, nothing made
for it beforehand (not even its data dir), ready when its room screen answers (the screen needs
no staff PIN). `procs.Agent` is the everyday agent; this one is for what it fixes in advance."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import BIN, clean_env, free_port, http_json, stop_process, wait_until


@dataclass
class AgentRun:
    """A running `hetang-agent run` whose output goes to a log file."""

    process: subprocess.Popen[bytes]
    ui_port: int
    log: Path

    @property
    def ui(self) -> str:
        """The staff page's base URL."""
        return f"http://127.0.0.1:{self.ui_port}"

    def output(self) -> str:
        """What it printed so far (stdout and stderr)."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def cmdline(self) -> list[str]:
        """Its command line as other users of the machine see it (`ps`, /proc/PID/cmdline)."""
        raw = Path(f"/proc/{self.process.pid}/cmdline").read_bytes()
        return raw.decode("utf-8", "replace").split("\0")

    def stop(self) -> int:
        """SIGTERM; answers the exit status."""
        return stop_process(self.process)


def start_agent(log: Path, *args: str, **env: str) -> AgentRun:
    """`hetang-agent run --ui-port FREE --ice-hosts 127.0.0.1 ARGS…` with only these HETANG_*
    variables; waits until its room screen answers (fails with its output if it exits)."""
    port = free_port()
    argv = [str(BIN / "hetang-agent"), "run", "--ui-port", str(port), "--ice-hosts", "127.0.0.1"]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [*argv, *args],
            env=clean_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    run = AgentRun(process, port, log)

    def ready() -> bool:
        code = process.poll()
        assert code is None, f"the agent exited with {code}:\n{run.output()}"
        try:
            return http_json("GET", run.ui + "/screen/state", timeout=2)[0] == 200
        except OSError:
            return False

    try:
        wait_until(ready, "the agent's room screen")
    except BaseException:
        run.stop()
        raise
    return run
