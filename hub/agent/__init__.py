"""The reference echo agent (hub.agent.echo) and its command line (python -m hub.agent)."""
