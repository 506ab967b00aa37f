"""The channels a team of agents shares while it works, all on Redis except the git remote.

`mailbox`: each agent's inbox and the pair's ordered message log; `start`: the team's
agents start together (a bounded wait, or a withdrawal); `liveness`: heartbeats, and
notices when a teammate is lost, runs again or has finished; `remote`: the pair's shared
bare git repository (`--git`).
"""
