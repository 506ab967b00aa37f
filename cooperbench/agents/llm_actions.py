"""The `mini_swe_agent`'s reading of model answers and writing of observations.

An answer must hold exactly one ```bash block; its content is the command. A command
starting with `send_message` is, when messaging is on, parsed here into an `Outgoing`
message instead of being run. Observations show a command's exit code and its output,
shortened in the middle to a character limit.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ..sandbox import ExecResult
from .llm_prompts import SUBMIT_COMMAND

BASH_BLOCK = re.compile(r"^```bash[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
HEREDOC = re.compile(
    r"send_message[ \t]+(?:(--wait)[ \t]+)?(\S+)[ \t]*<<-?[ \t]*(['\"]?)(\w+)\3[ \t]*\n(.*)", re.DOTALL
)
SEND_USAGE = "usage: send_message [--wait] <teammate> <<'MSG' ... MSG, or send_message [--wait] <teammate> \"text\""


@dataclass(frozen=True)
class Outgoing:
    recipient: str
    body: str
    wait: bool


def bash_commands(answer: str) -> list[str]:
    """The contents of every ```bash block in a model answer."""
    return [block.strip("\n") for block in BASH_BLOCK.findall(answer)]


def format_reminder(found: int) -> str:
    what = "no ```bash block" if found == 0 else f"{found} ```bash blocks"
    return (
        f"Format error: your answer had {what}, or an empty one. Every answer must contain a short "
        "explanation followed by exactly ONE ```bash block holding one non-empty command. "
        f"When you are done, the command is `{SUBMIT_COMMAND}`."
    )


def is_submit(command: str) -> bool:
    return command.strip() == SUBMIT_COMMAND


def is_send_message(command: str) -> bool:
    return re.match(r"\s*send_message(\s|$)", command) is not None


def parse_send_message(command: str) -> Outgoing:
    """The message a send_message command sends; ValueError (with the usage) if it is malformed."""
    command = command.strip()
    heredoc = HEREDOC.fullmatch(command)
    if heredoc:
        wait, recipient, _, delimiter, rest = heredoc.groups()
        lines = rest.split("\n")
        end = next((i for i, line in enumerate(lines) if line.strip() == delimiter), None)
        if end is None:
            raise ValueError(f"the message is not closed by a line {delimiter}; {SEND_USAGE}")
        if any(line.strip() for line in lines[end + 1 :]):
            raise ValueError(f"nothing may follow the message: send_message is a command of its own; {SEND_USAGE}")
        return Outgoing(recipient, "\n".join(lines[:end]), bool(wait))
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"cannot read the command ({exc}); {SEND_USAGE}") from None
    args = words[1:]
    wait = bool(args) and args[0] == "--wait"
    args = args[1:] if wait else args
    if len(args) != 2:
        raise ValueError(f"expected a teammate and one quoted message; {SEND_USAGE}")
    return Outgoing(args[0], args[1], wait)


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, keeping its head and tail."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - limit} characters omitted ...]\n{text[len(text) - tail :]}"


def observation(result: ExecResult, limit: int, timeout: float) -> str:
    output = shorten(result.output, limit) if result.output else "(no output)"
    if result.timed_out:
        return f"The command was stopped after {timeout:g} seconds (time limit).\nOutput so far:\n{output}"
    return f"Exit code: {result.exit_code}\nOutput:\n{output}"
