"""The `mini_swe_agent` prompts: default templates, and filling them for one agent.

Templates are Python format strings (write `{{` and `}}` for literal braces). The
placeholders: {identity} (who the agent is and, in coop, how the patches are combined),
{agent_id}, {teammates}, {task}, {features}, {specs} (the feature descriptions),
{repo_dir}, {sentinel} (the submit word), {sentinel_command} (the submit command),
{command_timeout}, {step_limit}, {message_wait_timeout} and
{messaging} (the messaging tool's manual; empty when messaging is off) and
{git} (how to use the pair's shared git remote; empty without `--git`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import AgentContext

SENTINEL = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
SUBMIT_COMMAND = f"echo {SENTINEL}"

SYSTEM_TEMPLATE = """{identity}

You work in a git repository at {repo_dir} through a bash shell. Every answer you give must \
contain a short explanation of your reasoning followed by exactly ONE bash code block holding \
one command (it may span several lines, e.g. a heredoc), like this:

```bash
grep -n "def main" src/app.py
```

The harness runs the command in the repository and replies with its exit code and output. \
Each command runs in a fresh shell (`cd` and variables do not carry over), with no network, and \
is stopped after {command_timeout} seconds. Long outputs are shortened in the middle. Do not \
start interactive programs (editors, pagers); edit files with sed, python or `cat > file <<'EOF'`.

When your work is done, answer with exactly this command, alone in its block:

```bash
{sentinel_command}
```

Nothing runs after it: the changes in your working tree are your submission (no need to commit).
{messaging}{git}"""

INSTANCE_TEMPLATE = """Implement the following in the repository at {repo_dir}:

{specs}

Explore the code first, make the change, check it (run the existing tests where you can), \
then submit with `echo {sentinel}`. You have at most {step_limit} commands."""

COOP_IDENTITY = """You are {agent_id}, a software engineer working as one of a team of {size} on \
the same repository at the same time (your teammates: {teammates}). Each of you implements a \
different feature in your own copy of the repository. When all of you have finished, your \
patches are merged with git and the tests of every feature are run on the merged code: your \
change must merge cleanly with your teammates' changes and must not break their features."""

SOLO_IDENTITY = "You are a software engineer working alone on a repository."

MESSAGING = """
## Messages to your teammates

You can message {teammates}. These commands are handled by the harness, not by the shell; use \
one as the whole command of an answer:

```bash
send_message {first} <<'MSG'
Your message, over as many lines as you need.
MSG
```

or, for a short message, `send_message {first} "text"` (or single quotes). Write \
`send_message --wait {first} ...` to also wait (up to {message_wait_timeout} seconds) for a \
reply, which then is your observation. Messages your teammates send you appear at the start \
of your next observation as "Message from {first}: ...". Use messages to agree on who changes \
which files and functions and on shared names, so your patches merge cleanly. The harness \
tells you ("Notice from the harness: ...") when a teammate has finished, and so reads no more \
messages, or has stopped unexpectedly; a notice also ends a wait for a reply.
"""

GIT = """
## A git remote shared with your teammates

Your repository has a remote named `{remote}` that your teammates can reach too. Share work \
in progress by committing and pushing your own branch (`git push {remote} HEAD:{agent_id}`), \
and look at theirs with `git fetch {remote}` then e.g. `git diff HEAD {remote}/{first}`. \
Only the changes in your own working tree count as your submission; what you push is for \
your teammates to see.
"""


def feature_specs(ctx: AgentContext) -> str:
    return "\n\n".join(f"## Feature {f.number}\n\n{f.spec.strip()}" for f in ctx.features)


def placeholders(
    ctx: AgentContext, *, command_timeout: float, step_limit: int, message_wait_timeout: float
) -> dict[str, object]:
    """The values of every placeholder for one agent (the limits come from its configuration)."""
    teammates = ", ".join(ctx.teammates)
    values = {
        "agent_id": ctx.agent_id,
        "teammates": teammates,
        "task": ctx.task.key,
        "features": ", ".join(str(f.number) for f in ctx.features),
        "specs": feature_specs(ctx),
        "repo_dir": ctx.sandbox.repo_dir,
        "sentinel": SENTINEL,
        "sentinel_command": SUBMIT_COMMAND,
        "command_timeout": f"{command_timeout:g}",
        "step_limit": step_limit,
        "message_wait_timeout": f"{message_wait_timeout:g}",
    }
    values["identity"] = COOP_IDENTITY.format(size=len(ctx.teammates) + 1, **values) if ctx.teammates else SOLO_IDENTITY
    values["messaging"] = (
        MESSAGING.format(first=ctx.teammates[0], **values) if ctx.teammates and ctx.mailbox is not None else ""
    )
    values["git"] = (
        GIT.format(remote=ctx.git_remote, first=ctx.teammates[0], **values) if ctx.teammates and ctx.git_remote else ""
    )
    return values


def render(template: str, values: dict[str, object], name: str) -> str:
    """Fill one template; a bad placeholder is a ValueError naming the template."""
    try:
        return template.format(**values)
    except KeyError as exc:
        raise ValueError(
            f"agent-config {name} uses unknown placeholder {{{exc.args[0]}}} (known: {', '.join(sorted(values))})"
        ) from None
    except (ValueError, IndexError) as exc:
        raise ValueError(
            f"agent-config {name} is not a valid template ({exc}); write {{{{ and }}}} for literal braces"
        ) from None
