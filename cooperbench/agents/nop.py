"""The `nop` agent: changes nothing. A floor for the benchmark: none of its pairs may pass."""

from ..statuses import AgentStatus
from . import AgentContext, AgentResult


class NopAgent:
    name = "nop"
    uses_environment = False  # runs none of the project's code: no environment to copy or install
    trusted = True  # leaves the base as it is: its tests are the dataset's own code

    def run(self, ctx: AgentContext) -> AgentResult:
        return AgentResult(status=AgentStatus.SUBMITTED, steps=0)
