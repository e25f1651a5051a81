"""Agents: narrower keys for AI agents, the tools they may call (`agents.tools`), and the money moves they may
only ask for until a human (or a key with that right) confirms them."""
