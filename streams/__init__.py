"""The Faust app and its agents, the simulator, local services and the command line."""
