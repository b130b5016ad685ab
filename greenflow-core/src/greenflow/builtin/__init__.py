"""Built-in plugins: the local platform, the command workload and the collectors."""
