"""OnwardError: the base of every error onward reports to a user. Its message is one line that names the field,
byte or argument at fault and what was expected; `onward` (cli.main) prints it with its prefix and exits with its
status, in one place, for every command."""

from __future__ import annotations


class OnwardError(Exception):
    prefix = "error"
    exit_status = 2  # bad input, a failed build, a device that does not answer as the spec says

    def line(self) -> str:
        return f"{self.prefix}: {self}"
