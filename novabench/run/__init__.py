"""Running a suite: the runner, workloads, the result sink, resource sampling, machine facts."""
