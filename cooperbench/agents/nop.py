"""The `nop` agent: changes nothing. A floor for the benchmark: none of its pairs may pass."""

from ..statuses import AgentStatus
from . import AgentContext, AgentResult


class NopAgent:
    name = "nop"

    def run(self, ctx: AgentContext) -> AgentResult:
        return AgentResult(status=AgentStatus.SUBMITTED, steps=0)
