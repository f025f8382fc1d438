"""Mininet's own CLI on the emulated fabric, reachable by the fabric's names.

Mininet finds nodes by their Mininet names (dl1h1, dl1gw1); the fabric file's names
(dc1-h1, dc1-gw1) are added as aliases, and '-' is made part of a command word, so
`dc1-h1 ping dc2-h3`, `iperf dc1-h1 dc2-h1` and `link dc1-gw1 dc2-gw1 down` work as a
Mininet user types them. Extra commands (the lab's dcilab commands) are given as callables.
The lines that failed are kept, so that a script can end with an exit status: an extra
command that returned non-zero, or a line Mininet reported an error for (an unknown command
or node). A command run on a host is Mininet's `sh`-like pass-through: its exit status is
not known. A script's lines are read as typed ones are (a `#` starts a comment), and
everything its lines print goes to standard output, in order: Mininet writes its output
(pingall, a host's command) through its log, on standard error, where a redirected script
would lose its place among the rest.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from typing import Callable

from mininet.cli import CLI
from mininet.log import error, lg, setLogLevel


def add_fabric_names(emulation) -> dict[str, str]:
    """Let Mininet find every host and switch by its fabric name too; return name -> node."""
    net, fabric = emulation.net, emulation.fabric
    names = {h.name: h.node for h in fabric.hosts.values()}
    names |= {s.name: s.bridge for s in fabric.switches.values()}
    for name, node in names.items():
        net.nameToNode.setdefault(name, net.nameToNode[node])
    return names


class _ErrorSeen(logging.Handler):
    """Marks the CLI's current line failed when Mininet logs an error for it."""

    def __init__(self, cli: "FabricCLI"):
        super().__init__(logging.ERROR)
        self.cli = cli

    def emit(self, record) -> None:
        self.cli.line_failed = True


class FabricCLI(CLI):
    """mininet.cli.CLI with fabric names and `commands` (name -> function of the rest of
    the line, returning an exit status or None, its docstring the help). An extra command
    overrides Mininet's of that name. `failed`: the lines that failed, in order."""

    identchars = CLI.identchars + "-"          # dc1-h1 is one word, not `dc1` and `-h1`
    script: str | None = None
    interrupted = False           # Ctrl-C during a script's line: the script stops

    def __init__(self, emulation, commands: dict[str, Callable[[str], object]],
                 script: str | None = None, stdin=sys.stdin):
        self.extra = dict(commands)
        self.failed: list[str] = []
        self.line_failed = False
        self.script = script
        for name, function in self.extra.items():
            setattr(self, f"do_{name}", self._counted(function))
        add_fabric_names(emulation)
        setLogLevel("output")     # the emulation runs at "warning", which hides CLI output
        errors = _ErrorSeen(self)
        lg.addHandler(errors)
        streams = [h for h in lg.handlers if isinstance(h, logging.StreamHandler)
                   and not isinstance(h, logging.FileHandler)]
        try:
            with contextlib.ExitStack() as transcript:
                if script:                    # one stream, in order (see the docstring)
                    for handler in streams:
                        before = handler.setStream(sys.stdout)     # None: stdout already
                        if before is not None:
                            transcript.callback(handler.setStream, before)
                    transcript.enter_context(contextlib.redirect_stderr(sys.stdout))
                super().__init__(emulation.net, stdin=stdin, script=script)
        finally:
            lg.removeHandler(errors)
            setLogLevel("warning")

    def _counted(self, function: Callable[[str], object]) -> Callable[[str], None]:
        def command(line: str) -> None:
            status = function(line)
            if isinstance(status, int) and status != 0:
                self.line_failed = True
            # None: cmd.Cmd ends the loop on a command that returns something true.
        command.__doc__ = function.__doc__
        return command

    def onecmd(self, line: str):
        self.line_failed = False
        line = self.precmd(line)      # a script's lines too (Mininet's `source` skips it)
        if not line.strip():
            return False              # a comment or a blank line: nothing to run
        with self._noting_ctrl_c():
            stop = super().onecmd(line)
        if self.line_failed:
            self.failed.append(line.strip())
        return True if self.interrupted and self.script else stop

    @contextlib.contextmanager
    def _noting_ctrl_c(self):
        """While a script's line runs, a Ctrl-C is noted, then raised as ever: Mininet
        interrupts a host's command and goes on, and a watch takes it as "done", so a
        script interrupted halfway ran its other lines and exited 0 (a CLI auditor's)."""
        if not self.script or threading.current_thread() is not threading.main_thread() \
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield
            return

        def interrupted(signum, frame):
            self.interrupted = self.line_failed = True
            raise KeyboardInterrupt
        signal.signal(signal.SIGINT, interrupted)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def do_source(self, line: str):
        """Read commands from a file, as Mininet's `source`, but stop at `exit` or `quit`
        (Mininet's ran the lines after them: a newcomer's script, cut short by an `exit`,
        went on)."""
        args = line.split()
        if len(args) != 1:
            error("usage: source <file>\n")
            return False
        try:
            with open(args[0]) as self.inputFile:
                for command in self.inputFile:
                    if self.onecmd(command):
                        return True
        except (OSError, UnicodeDecodeError) as exc:     # not text: said, not a traceback
            self.failed.append(f"source {args[0]}")
            error(f"error reading file {args[0]}: {exc}\n")
        finally:
            self.inputFile = None
        return False

    def get_names(self):
        # cmd.Cmd lists commands for `help` from the class; add the extra ones.
        return sorted(set(super().get_names()) | {f"do_{n}" for n in self.extra})
