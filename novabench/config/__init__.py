"""What a suite asks for: its schema, the YAML loader with positions, hosts, checks, workloads."""
