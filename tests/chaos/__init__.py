"""The chaos test: the whole engine under random faults, every task's log checked against its exact grid."""
