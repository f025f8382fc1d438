"""The prefix of every name the emulation gives this machine (bridges, interfaces, host
nodes, namespaces): one definition, light, so that a client finding the running lab loads
none of the fabric's code."""

NAME_PREFIX = "dl"
